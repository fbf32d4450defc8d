// Command hybridflow-simhost is the simulated PowerShell host's relay and
// nothing else: internal/sim's HostCommand starts it, when it sits beside
// the running program, instead of re-executing that (much larger) program
// as each tenant's host. It speaks the host protocol on stdin/stdout and
// forwards every line to the simulator named in HYBRIDFLOW_SIM_HOST.
//
// Exit status: 0 when the client closed stdin, 3 when the simulator
// dropped the host (a simulated crash), 2 on a bad setup.
package main

import (
	"fmt"
	"os"

	"github.com/hybridflow/hybridflow/internal/sim/pshostrelay"
)

func main() {
	if _, ok := os.LookupEnv(pshostrelay.HostEnv); !ok {
		fmt.Fprintf(os.Stderr, "hybridflow-simhost: the simulated PowerShell host relay; the simulated backend starts it with %s=connect,side,tenant set\n", pshostrelay.HostEnv)
		os.Exit(2)
	}
	pshostrelay.MaybeRun()
}
