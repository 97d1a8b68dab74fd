package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
)

// hashChunk is the largest piece AsyncHash hands to its goroutine at once.
const hashChunk = 1 << 20

// AsyncHash is a SHA-256 computed in a goroutine of its own: Write copies what
// it is given and returns, so that hashing runs on another core beside the
// writer's own work (compression, disk, network). A checkpoint's data is
// hashed twice or three times on its way (each file for the manifest, the
// whole archive by the helper, and again by the plugin): done inline, that
// alone took longer than the compression. Not for concurrent writers.
type AsyncHash struct {
	h     hash.Hash
	ch    chan []byte
	pool  sync.Pool
	done  chan struct{}
	n     int64
	sum   []byte
	ended bool
}

// NewAsyncSHA256 starts a SHA-256 hashing goroutine; Sum ends it.
func NewAsyncSHA256() *AsyncHash {
	a := &AsyncHash{h: sha256.New(), ch: make(chan []byte, 16), done: make(chan struct{})}
	a.pool.New = func() any { b := make([]byte, hashChunk); return &b }
	go func() {
		defer close(a.done)
		for b := range a.ch {
			a.h.Write(b)
			b = b[:cap(b)]
			a.pool.Put(&b)
		}
	}()
	return a
}

// Write queues a copy of p for hashing.
func (a *AsyncHash) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		bp := a.pool.Get().(*[]byte)
		c := copy(*bp, p)
		a.ch <- (*bp)[:c]
		p = p[c:]
	}
	a.n += int64(n)
	return n, nil
}

// Buffer returns a buffer of the hash's own (hashChunk bytes) for the caller
// to fill and give back with Hand: what is read into it is then hashed
// without being copied.
func (a *AsyncHash) Buffer() []byte { return *a.pool.Get().(*[]byte) }

// Hand queues b, from Buffer, for hashing; the caller must not touch b
// afterwards.
func (a *AsyncHash) Hand(b []byte) {
	a.n += int64(len(b))
	a.ch <- b
}

// Len is how many bytes were written.
func (a *AsyncHash) Len() int64 { return a.n }

// Sum waits until everything written is hashed and returns the SHA-256 in
// hex. No Write may follow; Sum may be called again.
func (a *AsyncHash) Sum() string {
	if !a.ended {
		a.ended = true
		close(a.ch)
		<-a.done
		a.sum = a.h.Sum(nil)
	}
	return hex.EncodeToString(a.sum)
}

// Close ends the goroutine (Sum does too); for a hash abandoned on an error.
func (a *AsyncHash) Close() { _ = a.Sum() }
