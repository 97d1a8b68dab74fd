package helperrun

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/docker/docker/api/types/mount"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
	"github.com/xcheckpoint/docker-xcheckpoint/internal/testhooks"
)

// Direct is the offer of an archive's folder to the helper (see
// helperapi.DirectOffer): the proof written there, the offer for the
// request, the bind mount for the helper, and, once the helper answered,
// its verdict.
type Direct struct {
	offer     helperapi.DirectOffer
	mount     mount.Mount
	tokenPath string
	// local is the plugin's own handle on the archive (the temporary output
	// file): what the helper writes there is read back through it and
	// checked.
	local *os.File
	// verdict is the helper's answer (nil until it came).
	verdict *helperapi.DirectVerdict
}

// OfferDirect writes the proof into the folder of file (a random token in a
// new 0600 file) and returns the offer, or nil when the token cannot be
// written there (a read-only folder: the archive then goes through the API).
// readOnly mounts the folder read-only in the helper (an archive it reads).
// Call remove once the helper is done.
func OfferDirect(file string, readOnly bool) *Direct {
	mode := testhooks.DirectMode()
	if mode == testDirectOff {
		return nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil
	}
	dir, base := filepath.Split(abs)
	b := make([]byte, helperapi.DirectTokenBytes/2)
	if _, err := rand.Read(b); err != nil {
		return nil
	}
	token := hex.EncodeToString(b)
	f, err := os.CreateTemp(dir, ".xcheckpoint-token-*")
	if err != nil {
		return nil
	}
	_ = f.Chmod(0o600)
	_, werr := f.WriteString(token)
	if cerr := f.Close(); werr != nil || cerr != nil {
		_ = os.Remove(f.Name())
		return nil
	}
	if mode == testDirectWrongToken {
		// The tests' way to see the helper refuse a folder it cannot prove.
		b[0] ^= 0xff
		token = hex.EncodeToString(b)
	}
	return &Direct{
		offer:     helperapi.DirectOffer{TokenFile: filepath.Base(f.Name()), Token: token, File: base},
		mount:     mount.Mount{Type: mount.TypeBind, Source: filepath.Clean(dir), Target: helperapi.DirectMount, ReadOnly: readOnly},
		tokenPath: f.Name(),
	}
}

// Remove deletes the proof.
func (d *Direct) Remove() {
	if d != nil {
		_ = os.Remove(d.tokenPath)
	}
}

// Used says whether the helper took the offer.
func (d *Direct) Used() bool {
	return d != nil && d.verdict != nil && d.verdict.Used
}

// Offered returns the request's offer (nil without one).
func (d *Direct) Offered() *helperapi.DirectOffer {
	if d == nil {
		return nil
	}
	o := d.offer
	return &o
}

// How says in a few words how the archive travelled.
func (d *Direct) How(output bool) string {
	switch {
	case d.Used() && output:
		return "written in place by the helper: the daemon sees this folder"
	case d.Used():
		return "read in place by the helper: the daemon sees this folder"
	case d != nil && d.verdict != nil && d.verdict.Reason != "":
		return fmt.Sprintf("through the Docker API: %s", d.verdict.Reason)
	default:
		return "through the Docker API"
	}
}

// The tests' settings of testDirectMode.
const (
	testDirectOff        = "off"
	testDirectWrongToken = "wrong-token"
)

// SetLocal gives the offer the plugin's own handle on the archive (the
// temporary output file), through which what the helper writes is read back.
func (d *Direct) SetLocal(f *os.File) {
	if d != nil {
		d.local = f
	}
}

// Accept records the helper's verdict (its KindDirect event).
func (d *Direct) Accept(v helperapi.DirectVerdict) {
	if d != nil && d.verdict == nil {
		d.verdict = &v
	}
}

// Answered says whether the helper gave its verdict.
func (d *Direct) Answered() bool { return d != nil && d.verdict != nil }
