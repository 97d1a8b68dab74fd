package helper

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// DirectRoot is where the folder a plugin offers is mounted
// (helperapi.DirectMount). Tests change it.
var DirectRoot = helperapi.DirectMount

// plainName says whether name is one file name in a folder.
func plainName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// proveDirect reads the offer's token through DirectRoot: the folder the
// plugin offered is the one mounted here only when it holds the file the
// plugin has just written, with the same token.
func proveDirect(o *helperapi.DirectOffer) (bool, string) {
	if !plainName(o.TokenFile) || !plainName(o.File) || len(o.Token) != helperapi.DirectTokenBytes {
		return false, "malformed offer"
	}
	f, err := os.OpenFile(filepath.Join(DirectRoot, o.TokenFile), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "the daemon host does not see the folder"
	}
	if err != nil {
		return false, fmt.Sprintf("the folder's token cannot be read on the daemon host: %v", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return false, "the folder's token is not a file on the daemon host"
	}
	b, err := io.ReadAll(io.LimitReader(f, helperapi.DirectTokenBytes+1))
	if err != nil {
		return false, fmt.Sprintf("the folder's token cannot be read on the daemon host: %v", err)
	}
	if subtle.ConstantTimeCompare(b, []byte(o.Token)) != 1 {
		return false, "the daemon host has another folder under that path"
	}
	return true, ""
}

// emitDirect says whether the offered folder is used (one KindDirect event).
func emitDirect(em *helperapi.Emitter, containerID string, used bool, reason string) error {
	v := &helperapi.DirectVerdict{Used: used, Reason: reason}
	if err := em.Emit(helperapi.Event{Kind: helperapi.KindDirect, Container: containerID, Direct: v}); err != nil {
		return fmt.Errorf("answering the plugin's offer of its folder: %w", err)
	}
	return nil
}

// directOutput opens the plugin's temporary output file for the archive when
// the offer is proven and the file is there, empty, and a regular file (the
// plugin made it; nothing is created here), and says on em whether it did.
// It returns nil, nil when the archive goes through the API instead.
func directOutput(o *helperapi.DirectOffer, em *helperapi.Emitter, containerID string) (*os.File, error) {
	if o == nil {
		return nil, nil
	}
	used, reason := proveDirect(o)
	var f *os.File
	if used {
		var err error
		f, err = os.OpenFile(filepath.Join(DirectRoot, o.File), os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == nil {
			if st, serr := f.Stat(); serr != nil || !st.Mode().IsRegular() || st.Size() != 0 {
				f.Close()
				f, err = nil, errors.New("not an empty file")
			}
		}
		if err != nil {
			used, reason = false, fmt.Sprintf("the output file cannot be written on the daemon host: %v", err)
		}
	}
	if err := emitDirect(em, containerID, used, reason); err != nil {
		if f != nil {
			f.Close()
		}
		return nil, err
	}
	return f, nil
}

// archiveInput is where an archive-reading command (import, restore
// --input) reads the archive: the plugin's file where it is, when the offer
// is proven, or stdin. It says which on em before reading a byte; the plugin
// sends the archive on stdin only when told so. When the file is used, the
// plugin holds stdin open without sending anything while it listens:
// its end cancels the returned context, as the end of the archive would have
// stopped the reading. The returned function closes what was opened.
func archiveInput(ctx context.Context, o *helperapi.DirectOffer, stdin io.Reader, em *helperapi.Emitter) (context.Context, io.Reader, func(), error) {
	if o == nil {
		return ctx, stdin, func() {}, nil
	}
	used, reason := proveDirect(o)
	var f *os.File
	if used {
		var err error
		f, err = os.OpenFile(filepath.Join(DirectRoot, o.File), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == nil {
			if st, serr := f.Stat(); serr != nil || !st.Mode().IsRegular() {
				f.Close()
				f, err = nil, errors.New("not a regular file")
			}
		}
		if err != nil {
			used, reason = false, fmt.Sprintf("the archive cannot be read on the daemon host: %v", err)
		}
	}
	if err := emitDirect(em, "", used, reason); err != nil {
		if f != nil {
			f.Close()
		}
		return ctx, nil, func() {}, err
	}
	if f == nil {
		return ctx, stdin, func() {}, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			cancel(errors.New("the plugin went away (stdin closed)"))
		}()
	}
	return ctx, f, func() { cancel(nil); f.Close() }, nil
}

// directWriter writes the archive into the plugin's file and announces
// every helperapi.DirectSegmentBytes written (KindSegment): the plugin reads
// them back from its side to check them while the rest is written.
type directWriter struct {
	f         *os.File
	em        *helperapi.Emitter
	every     int64
	n         int64
	announced int64
	count     int
}

func (d *directWriter) Write(p []byte) (int, error) {
	n, err := d.f.Write(p)
	d.n += int64(n)
	if err != nil {
		return n, err
	}
	if d.n-d.announced >= d.every {
		if err := d.announce(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (d *directWriter) announce() error {
	seg := helperapi.SegmentInfo{Index: d.count, Bytes: d.n - d.announced}
	d.count++
	d.announced = d.n
	if err := d.em.Emit(helperapi.Event{Kind: helperapi.KindSegment, Segment: &seg}); err != nil {
		return fmt.Errorf("announcing archive bytes: %w", err)
	}
	return nil
}

// Close announces the rest and closes the file.
func (d *directWriter) Close() error {
	var err error
	if d.n > d.announced {
		err = d.announce()
	}
	return errors.Join(err, d.f.Close())
}
