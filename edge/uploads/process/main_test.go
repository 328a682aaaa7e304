package process

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fakeTools is a directory holding stand-ins for tesseract and pdftoppm,
// written once in TestMain: writing an executable while parallel tests fork
// can fail its exec with "text file busy" (golang.org/issue/22315).
var fakeTools string

// slowTool stands in for tesseract and pdftoppm. It lists "eng" and "osd"
// for --list-langs, like tesseract; otherwise it starts a child that would
// run for five minutes, writes the child's pid next to its input file (the
// first absolute path among its arguments), and waits: a stuck tool whose
// child must die with it.
const slowTool = `#!/bin/sh
if [ "$1" = --list-langs ]; then
  printf 'List of available languages in "/fake/" (2):\neng\nosd\n'
  exit 0
fi
for arg in "$@"; do
  case $arg in /*) input=$arg; break ;; esac
done
sleep 300 &
echo $! > "$input.child"
wait
`

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "process-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "slowtool"), []byte(slowTool), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fakeTools = dir
		return m.Run()
	}())
}
