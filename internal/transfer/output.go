package transfer

import (
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/streams"
	"github.com/schollz/progressbar/v3"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/bars"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

// OptionError is an output the user named that cannot be one: the command
// layer reports it as a usage error.
type OptionError struct{ Err error }

func (e OptionError) Error() string { return e.Err.Error() }
func (e OptionError) Unwrap() error { return e.Err }

// Output receives an archive from a helper: into a private temporary
// file beside the target, renamed to the target only once the archive is
// whole and matches the size and SHA-256 the helper reports; or onto stdout.
type Output struct {
	target string
	tmp    *os.File
	w      io.Writer
	hash   hash.Hash32
	n      int64
	bar    *progressbar.ProgressBar
	done   bool
	// unsynced counts bytes written since the last background sync started;
	// syncing is closed when that sync ended (nil: none yet).
	unsynced int64
	syncing  chan struct{}
	// direct is the offer of the output's folder to the helper (nil for
	// stdout, or when no token could be written there); once the helper
	// took it, the helper writes tmp itself and Write only checks and
	// counts what is read back from it.
	direct *helperrun.Direct
}

// Direct is the offer of the output's folder to the helper (nil for stdout).
func (o *Output) Direct() *helperrun.Direct { return o.direct }

// syncEvery is how much of the file may be written before a background
// fsync starts: the disk writes while more arrives, and the fsync before the
// rename finds little left to do (all at the end, it took about a third of
// create --output's time for 1 GiB of memory).
const syncEvery = 64 << 20

// NewOutput opens the destination of an archive: FILE or "-" (stdout,
// refused when it is a terminal: an archive is binary).
func NewOutput(out *streams.Out, errOut *streams.Out, target string, quiet bool) (*Output, error) {
	o := &Output{target: target, hash: crc32.NewIEEE()}
	if target == "-" {
		if out.IsTerminal() {
			return nil, OptionError{errors.New("refusing to write a checkpoint archive to a terminal: redirect stdout, or use --output FILE")}
		}
		keepWritingErrors()
		o.w = out
	} else {
		dir, base := filepath.Split(target)
		if dir == "" {
			dir = "."
		}
		if st, err := os.Stat(target); err == nil && st.IsDir() {
			return nil, OptionError{fmt.Errorf("--output %s is a folder: name a file", target)}
		}
		f, err := os.CreateTemp(dir, "."+base+".xcheckpoint-*.tmp")
		if err != nil {
			return nil, fmt.Errorf("creating the archive next to %s: %w", target, err)
		}
		// CreateTemp makes it 0600 already; say it anyway, the file holds memory.
		_ = f.Chmod(0o600)
		o.tmp, o.w = f, f
		o.direct = helperrun.OfferDirect(f.Name(), false)
		o.direct.SetLocal(f)
	}
	if !quiet && errOut.IsTerminal() {
		o.bar = bars.NewBytesBar(errOut, -1, "Receiving")
	}
	return o, nil
}

// NewWriter sends an archive to w (migrate: the pipe into the
// destination's restore), checked as stdout is.
func NewWriter(w io.Writer) *Output {
	return &Output{target: "the destination", w: w, hash: crc32.NewIEEE()}
}

func (o *Output) Write(p []byte) (int, error) {
	n, err := len(p), error(nil)
	if !o.direct.Used() {
		n, err = o.w.Write(p)
	}
	o.hash.Write(p[:n])
	o.n += int64(n)
	if o.bar != nil {
		_ = o.bar.Add(n)
	}
	if o.tmp != nil {
		o.unsynced += int64(n)
		if o.unsynced >= syncEvery && o.syncDone() {
			o.unsynced = 0
			ch := make(chan struct{})
			o.syncing = ch
			go func(f *os.File) {
				defer close(ch)
				// Only to start the disk early: commit syncs for good.
				_ = f.Sync()
			}(o.tmp)
		}
	}
	return n, err
}

// syncDone says whether no background sync is running.
func (o *Output) syncDone() bool {
	if o.syncing == nil {
		return true
	}
	select {
	case <-o.syncing:
		return true
	default:
		return false
	}
}

// waitSync waits for a background sync to end.
func (o *Output) waitSync() {
	if o.syncing != nil {
		<-o.syncing
	}
}

// commit checks what arrived against what the helper sent and puts the file
// under its name.
func (o *Output) Commit(sent *helperapi.ArchiveResult) error {
	o.finishBar()
	if sent == nil {
		return errors.New("the helper did not describe the archive it sent")
	}
	if got := o.hash.Sum32(); o.n != sent.Bytes || got != sent.CRC32 {
		return fmt.Errorf("the archive arrived damaged: %d bytes, CRC-32 %08x; the helper sent %d bytes, CRC-32 %08x", o.n, got, sent.Bytes, sent.CRC32)
	}
	if o.tmp == nil {
		o.done = true
		return nil
	}
	if o.direct.Used() {
		// Nothing but what was checked may be in the file.
		if st, err := o.tmp.Stat(); err != nil || st.Size() != o.n {
			return fmt.Errorf("the archive the helper wrote is not the size it announced (%d bytes)", o.n)
		}
	}
	o.waitSync()
	if err := o.tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", o.target, err)
	}
	if err := o.tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", o.target, err)
	}
	if err := os.Rename(o.tmp.Name(), o.target); err != nil {
		return fmt.Errorf("writing %s: %w", o.target, err)
	}
	o.done = true
	return nil
}

// abort removes the temporary file unless the archive was committed, and
// the proof of the folder either way.
func (o *Output) Abort() {
	o.finishBar()
	o.direct.Remove()
	if o.done || o.tmp == nil {
		return
	}
	o.waitSync()
	o.tmp.Close()
	_ = os.Remove(o.tmp.Name())
}

// ShowsProgress says whether a progress bar shows the archive arriving (the
// helper's step lines then stay off the terminal).
func (o *Output) ShowsProgress() bool { return o.bar != nil }

func (o *Output) finishBar() {
	if o.bar != nil {
		_ = o.bar.Finish()
		o.bar = nil
	}
}

// lost says what became of the destination after a failure: a file never
// appears, but what went to stdout is gone.
func (o *Output) Lost() string {
	if o.tmp == nil && o.n > 0 {
		return fmt.Sprintf("the archive sent to %s is incomplete (%d bytes were written): discard it", o.Where(), o.n)
	}
	return "nothing was written to " + o.Where()
}

// where names the destination for messages.
func (o *Output) Where() string {
	if o.tmp == nil && o.target == "-" {
		return "stdout"
	}
	return o.target
}
