// Package journal keeps, on the user's machine, one JSON line for every
// checkpoint command (create, restore, export, import): when, against which
// daemon, on what, how it went and how long it took. `docker xcheckpoint
// history` reads it.
//
// Several commands may append at the same time (a cron job beside an
// interactive one, a batch's parallel runs). Each entry is one write(2) on a
// file opened with O_APPEND, so the kernel never interleaves two lines; a
// shared file lock held around the append and an exclusive one around
// rotation make sure no line is written into a file that is being rotated
// away. The journal is bounded: past its maximum size the file is renamed to
// FILE.1 (replacing the previous one), so at most about twice that is kept
// (a file may exceed it by one line per command appending at that moment).
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// FileName is the journal's file inside its folder; the previous file (after
// rotation) is FileName + ".1".
const FileName = "journal.jsonl"

// DefaultMaxSize is the size past which the journal is rotated: about 4,000
// entries, a year of a nightly backup of ten containers in the two files.
const DefaultMaxSize = 2 << 20

// Results an entry records.
const (
	ResultOK     = "ok"
	ResultFailed = "failed"
	// ResultInterrupted is a command cut short by the user (Ctrl-C).
	ResultInterrupted = "interrupted"
)

// Entry is one line of the journal.
type Entry struct {
	Time time.Time `json:"time"`
	// Command is create, restore, export or import.
	Command string `json:"command"`
	// Context is the CLI context; Daemon the daemon's host (DOCKER_HOST or the
	// context's endpoint) and DaemonName the name the daemon reports.
	Context    string `json:"context,omitempty"`
	Daemon     string `json:"daemon,omitempty"`
	DaemonName string `json:"daemon_name,omitempty"`
	Container  string `json:"container,omitempty"`
	// ContainerID is the full ID when known.
	ContainerID string `json:"container_id,omitempty"`
	Checkpoint  string `json:"checkpoint,omitempty"`
	// Result is ResultOK, ResultFailed or ResultInterrupted.
	Result string `json:"result"`
	// Error is the first line of the error the user read.
	Error string `json:"error,omitempty"`
	// Duration is the command's whole time for this container.
	Duration time.Duration `json:"duration_ns"`
	// Frozen is how long CRIU kept the container frozen (zero: not known).
	Frozen time.Duration `json:"frozen_ns,omitempty"`
	// Size is the checkpoint's or the archive's bytes.
	Size int64 `json:"size,omitempty"`
	// Archive is the archive written or read (create --output, export,
	// import, restore --input): a file, or "-" for stdout or stdin.
	Archive string `json:"archive,omitempty"`
}

// Journal is the journal file in a folder.
type Journal struct {
	dir     string
	maxSize int64
}

// Open returns the journal kept in dir (created, 0700, at the first
// append). maxSize <= 0 means DefaultMaxSize.
func Open(dir string, maxSize int64) *Journal {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	return &Journal{dir: dir, maxSize: maxSize}
}

// Path is the current journal file.
func (j *Journal) Path() string { return filepath.Join(j.dir, FileName) }

func (j *Journal) lockPath() string { return filepath.Join(j.dir, FileName+".lock") }

// Append adds e as one line. It never leaves half a line: the line is
// written with a single write on an O_APPEND file.
func (j *Journal) Append(e Entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding the journal entry: %w", err)
	}
	line = append(line, '\n')
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return fmt.Errorf("creating the journal folder: %w", err)
	}
	_ = os.Chmod(j.dir, 0o700)
	lock := flock.New(j.lockPath(), flock.SetPermissions(0o600))
	if err := lock.RLock(); err != nil {
		return fmt.Errorf("locking the journal: %w", err)
	}
	defer lock.Unlock()
	if st, err := os.Stat(j.Path()); err == nil && st.Size()+int64(len(line)) > j.maxSize {
		// Rotation needs the exclusive lock: no append may be under way in
		// the file being renamed away.
		if err := lock.Unlock(); err != nil {
			return err
		}
		if err := j.rotate(lock); err != nil {
			return err
		}
		if err := lock.RLock(); err != nil {
			return fmt.Errorf("locking the journal: %w", err)
		}
	}
	f, err := os.OpenFile(j.Path(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening the journal: %w", err)
	}
	n, werr := f.Write(line)
	cerr := f.Close()
	switch {
	case werr != nil:
		return fmt.Errorf("writing the journal: %w", werr)
	case n != len(line):
		return fmt.Errorf("writing the journal: short write (%d of %d bytes)", n, len(line))
	case cerr != nil:
		return fmt.Errorf("writing the journal: %w", cerr)
	}
	return nil
}

// rotate renames the full journal to FILE.1 under the exclusive lock; another
// command may have rotated it already while we waited for the lock.
func (j *Journal) rotate(lock *flock.Flock) error {
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("locking the journal for rotation: %w", err)
	}
	defer lock.Unlock()
	st, err := os.Stat(j.Path())
	if err != nil || st.Size() < j.maxSize/2 {
		return nil
	}
	if err := os.Rename(j.Path(), j.Path()+".1"); err != nil {
		return fmt.Errorf("rotating the journal: %w", err)
	}
	return nil
}

// Read returns every entry, oldest first, from the rotated file and the
// current one. A line that does not parse (written by a crashed or future
// version) is skipped and counted in skipped.
func (j *Journal) Read() (entries []Entry, skipped int, err error) {
	for _, p := range []string{j.Path() + ".1", j.Path()} {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("reading the journal: %w", err)
		}
		e, s, err := decode(f)
		f.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", p, err)
		}
		entries, skipped = append(entries, e...), skipped+s
	}
	return entries, skipped, nil
}

// decode reads JSON lines; a line that is not a whole entry is skipped.
func decode(r io.Reader) (entries []Entry, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		e, ok := parse(b)
		if !ok {
			// A line torn by a failed write (disk full) has the next entry
			// glued to its end: keep that one.
			skipped++
			if i := bytes.LastIndex(b, entryStart); i > 0 {
				if e, ok = parse(b[i:]); !ok {
					continue
				}
			} else {
				continue
			}
		}
		entries = append(entries, e)
	}
	return entries, skipped, sc.Err()
}

// entryStart is how every encoded Entry begins (Time is its first field).
var entryStart = []byte(`{"time":`)

func parse(b []byte) (Entry, bool) {
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil || e.Time.IsZero() || e.Command == "" {
		return Entry{}, false
	}
	return e, true
}
