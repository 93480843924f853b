package devstack

import (
	"os/exec"
	"syscall"
)

// withChildAttributes puts the child in its own process group, so stopping
// it reaches its children too, and has the kernel kill it when we die.
func withChildAttributes(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
