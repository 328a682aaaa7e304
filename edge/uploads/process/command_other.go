//go:build !unix

package process

import "os/exec"

// killGroupOnCancel leaves exec's default, which kills the tool alone:
// process groups are a Unix notion. Edge runs on Linux; this keeps the
// package building elsewhere for development.
func killGroupOnCancel(*exec.Cmd) {}
