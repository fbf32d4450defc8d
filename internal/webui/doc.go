// Package webui checks the Temporal Web UI as an operator sees it: its
// test opens the dev server's Web UI in headless Chromium, with the UI's
// codec endpoint at `hybridflow codec-server`, after a small rollout on
// the simulator, and reads a setup's decoded input and summary and the
// paused-tenants query from the page.
package webui
