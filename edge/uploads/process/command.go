package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	// maxToolOutput bounds what one tool run may write to standard output,
	// so a crafted file cannot make the node buffer without limit. A dense
	// page of text is well under 100 KiB.
	maxToolOutput = 4 << 20
	// stderrTail is how much of a tool's standard error an error message
	// quotes: the last lines, where the reason is.
	stderrTail = 512
	// waitDelay bounds the wait for a tool's output pipes after it exits or
	// is killed, in case a child it started outlives the kill.
	waitDelay = 5 * time.Second
)

var errTooMuchOutput = errors.New("output too large")

// runTool runs a tool to completion and returns its standard output. When
// ctx ends the tool and every process in its process group are killed, and
// the error wraps ctx.Err().
func runTool(ctx context.Context, env []string, name string, args ...string) ([]byte, error) {
	tool := filepath.Base(name)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = waitDelay
	killGroupOnCancel(cmd)
	stdout := &cappedBuffer{max: maxToolOutput, err: errTooMuchOutput}
	stderr := &cappedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", tool, ctx.Err())
	case stdout.full:
		return nil, fmt.Errorf("%s: %w (over %d bytes)", tool, errTooMuchOutput, maxToolOutput)
	case err != nil:
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > stderrTail {
			msg = "..." + msg[len(msg)-stderrTail:]
		}
		return nil, fmt.Errorf("%s: %w: %s", tool, err, msg)
	}
	return stdout.Bytes(), nil
}

// cappedBuffer keeps up to max bytes. Past that it fails the write with err
// (which makes exec stop reading, and the tool die of a broken pipe), or
// drops the rest when err is nil.
type cappedBuffer struct {
	bytes.Buffer
	max  int
	err  error
	full bool
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := b.max - b.Len()
	if len(p) > room {
		b.full = true
		room = max(room, 0)
		b.Buffer.Write(p[:room])
		if b.err != nil {
			return room, b.err
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
