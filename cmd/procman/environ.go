package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// dropFromEnviron removes the variable name from this process's environment:
// from Go's copy, which the processes it starts would inherit, and from the
// initial environment block, which /proc/<pid>/environ shows to every process
// of the same user. os.Unsetenv leaves that block as it was: the kernel reads
// it from the process's own memory, between env_start and env_end of
// /proc/self/stat. So the variable's value is overwritten there, through
// /proc/self/mem, with NUL bytes ("PROCMAN_TOKEN=" stays, empty).
func dropFromEnviron(name string) error {
	os.Unsetenv(name)
	start, end, err := environBounds()
	if err != nil {
		return err
	}
	mem, err := os.OpenFile("/proc/self/mem", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer mem.Close()
	block := make([]byte, end-start)
	if _, err := mem.ReadAt(block, start); err != nil {
		return fmt.Errorf("reading the environment block: %w", err)
	}
	prefix := []byte(name + "=")
	for off := 0; off < len(block); {
		n := bytes.IndexByte(block[off:], 0)
		if n < 0 {
			n = len(block) - off
		}
		if entry := block[off : off+n]; bytes.HasPrefix(entry, prefix) && len(entry) > len(prefix) {
			at := start + int64(off+len(prefix))
			if _, err := mem.WriteAt(make([]byte, len(entry)-len(prefix)), at); err != nil {
				return fmt.Errorf("overwriting %s in the environment block: %w", name, err)
			}
		}
		off += n + 1
	}
	return nil
}

// environBounds are env_start and env_end of /proc/self/stat (fields 50 and
// 51, Linux 3.5 and later): where the initial environment block lies.
func environBounds() (start, end int64, err error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, err
	}
	// Fields from the third on follow the command name, which may hold spaces.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 49 {
		return 0, 0, errors.New("/proc/self/stat has no env_start and env_end")
	}
	start, err1 := strconv.ParseInt(fields[50-3], 10, 64)
	end, err2 := strconv.ParseInt(fields[51-3], 10, 64)
	if err := errors.Join(err1, err2); err != nil || start <= 0 || end < start {
		return 0, 0, fmt.Errorf("/proc/self/stat: env_start %d, env_end %d: %v", start, end, err)
	}
	return start, end, nil
}
