package bench

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Chart draws tenants/min against concurrency for the durable runner and
// the concurrent floor, with the sequential baseline as a flat line (it
// has no concurrency).
func (r *Report) Chart(path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Rollout throughput (%d cores, %s)", r.Machine.Cores, r.Machine.Date)
	p.X.Label.Text = "concurrency"
	p.Y.Label.Text = "tenants per minute"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	pairs := r.sweepPairs()
	if len(pairs) == 0 {
		return fmt.Errorf("chart: no sweep points")
	}
	var dur, floor plotter.XYs
	for _, s := range pairs {
		dur = append(dur, plotter.XY{X: float64(s.c), Y: s.durable})
		floor = append(floor, plotter.XY{X: float64(s.c), Y: s.floor})
	}
	add := func(name string, xys plotter.XYs, c color.Color, dashed bool) error {
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return err
		}
		l.Color, pts.Color = c, c
		l.Width = vg.Points(1.5)
		if dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l, pts)
		p.Legend.Add(name, l, pts)
		return nil
	}
	if err := add("durable (Temporal)", dur, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, false); err != nil {
		return err
	}
	if err := add("concurrent floor (no durability)", floor, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, false); err != nil {
		return err
	}
	if r.Sequential.PerMinute > 0 {
		seq := plotter.XYs{{X: dur[0].X, Y: r.Sequential.PerMinute}, {X: dur[len(dur)-1].X, Y: r.Sequential.PerMinute}}
		if err := add(fmt.Sprintf("sequential script (%d tenants)", r.Sequential.Tenants), seq, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, true); err != nil {
			return err
		}
	}
	p.Y.Min = 0
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
