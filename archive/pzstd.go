package archive

import (
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstdChunk is how much input each zstd frame of a parallel writer holds.
// Each frame is compressed on its own (no match reaches into the previous
// one): at 2 MiB that costs next to nothing on memory pages (537,128,127
// bytes for the archive of 1 GiB of memory, 10 kB more than at 4 MiB), and
// a 1 GiB dump keeps every core busy. It bounds the writer's memory: at
// most GOMAXPROCS+2 frames exist, each with its input and its output (at 4
// MiB and with the frames recycled through a sync.Pool, compressing 1 GiB
// peaked at 129 MiB resident; at 2 MiB, recycled through a fixed free list,
// 49 MiB, on 2 cores).
const zstdChunk = 2 << 20

// parallelZstd compresses its input in independent frames of zstdChunk
// bytes, several at once (one per core), and writes them in order: a
// concatenation of zstd frames is one zstd stream for every decoder.
// klauspost/compress's streaming writer compresses one block at a time
// (its concurrency only overlaps compressing with writing), so an archive
// never used more than one core for compression.
type parallelZstd struct {
	enc   *zstd.Encoder
	cur   *zstdJob // being filled
	jobs  chan *zstdJob
	order chan *zstdJob
	done  chan struct{}
	// free holds written frames whose buffers are reused: a fixed set, not
	// a sync.Pool, which the garbage collector empties, so that a 1 GiB
	// archive makes no garbage of 4 MiB buffers.
	free chan *zstdJob

	mu     sync.Mutex
	err    error
	closed bool
}

type zstdJob struct {
	src, dst []byte
	ready    chan struct{}
}

func newParallelZstd(w io.Writer, level zstd.EncoderLevel) (*parallelZstd, error) {
	workers := runtime.GOMAXPROCS(0)
	// No window larger than a frame: nothing reaches further back.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(workers),
		zstd.WithWindowSize(zstdChunk), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	z := &parallelZstd{
		enc: enc,
		// In flight: one frame per worker being compressed, as many waiting
		// to be written; what the caller fills is one more.
		jobs:  make(chan *zstdJob, workers),
		order: make(chan *zstdJob, workers),
		done:  make(chan struct{}),
		// Every frame that can exist at once: those in order, the one
		// being written, and the one being filled.
		free: make(chan *zstdJob, workers+2),
	}
	for i := 0; i < workers; i++ {
		go func() {
			for j := range z.jobs {
				j.dst = z.enc.EncodeAll(j.src, j.dst[:0])
				close(j.ready)
			}
		}()
	}
	go func() {
		defer close(z.done)
		for j := range z.order {
			<-j.ready
			if z.failed() == nil {
				if _, err := w.Write(j.dst); err != nil {
					z.fail(err)
				}
			}
			select {
			case z.free <- j:
			default:
			}
		}
	}()
	return z, nil
}

func (z *parallelZstd) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *parallelZstd) fail(err error) {
	z.mu.Lock()
	if z.err == nil {
		z.err = err
	}
	z.mu.Unlock()
}

func (z *parallelZstd) Write(p []byte) (int, error) {
	if err := z.failed(); err != nil {
		return 0, err
	}
	if z.closed {
		return 0, errors.New("zstd: write after close")
	}
	n := len(p)
	for len(p) > 0 {
		if z.cur == nil {
			z.cur = z.newJob()
		}
		m := min(len(p), zstdChunk-len(z.cur.src))
		z.cur.src = append(z.cur.src, p[:m]...)
		p = p[m:]
		if len(z.cur.src) == zstdChunk {
			z.submit()
		}
	}
	return n, z.failed()
}

// newJob is an empty frame to fill, with the buffers of a written one when
// one is free.
func (z *parallelZstd) newJob() *zstdJob {
	select {
	case j := <-z.free:
		j.src, j.ready = j.src[:0], nil
		return j
	default:
		return &zstdJob{src: make([]byte, 0, zstdChunk)}
	}
}

// submit hands the filled frame to the workers, and its place in the output
// to the writer. It blocks while every slot is taken: the output sets the
// pace.
func (z *parallelZstd) submit() {
	j := z.cur
	z.cur = nil
	j.ready = make(chan struct{})
	z.order <- j
	z.jobs <- j
}

// Close compresses what is left, waits until every frame is written, and
// says whether all were. It does not close the underlying writer.
func (z *parallelZstd) Close() error {
	if z.closed {
		return z.failed()
	}
	z.closed = true
	if z.cur != nil && len(z.cur.src) > 0 {
		z.submit()
	}
	close(z.jobs)
	close(z.order)
	<-z.done
	return z.failed()
}
