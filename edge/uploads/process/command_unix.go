//go:build unix

package process

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// killGroupOnCancel runs the tool in a process group of its own and makes
// exec's cancel kill the whole group: a tool may start children of its own
// (pdftoppm can; so does any wrapper script an administrator puts in its
// place), and killing only the leader would leave them running, holding
// the CPU and the output pipe.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The group id is the leader's pid; the minus sign names the group.
		// No such group means every process in it has exited already.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
