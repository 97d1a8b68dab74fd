package helperrun

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/docker/docker/client"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// segmentFetcher fetches the segments of an archive from a helper container
// with Docker's archive API as the helper announces them (KindSegment), in
// order, into w: the transfer runs while the helper still compresses.
type segmentFetcher struct {
	api client.APIClient
	id  string
	w   io.Writer

	mu     sync.Mutex
	queue  []helperapi.SegmentInfo
	closed bool
	wake   chan struct{}

	// local, once set (readLocal), is the file the helper writes the archive
	// into itself: each announced part is read back from it and checked
	// instead of being fetched through the API.
	local *os.File

	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	fetched int
	bytes   int64
}

// startSegmentFetcher starts fetching; onError is called (from the fetching
// goroutine) when a segment cannot be fetched.
func startSegmentFetcher(ctx context.Context, api client.APIClient, id string, w io.Writer, onError func(error)) *segmentFetcher {
	ctx, cancel := context.WithCancel(ctx)
	f := &segmentFetcher{api: api, id: id, w: w, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		buf := make([]byte, 1<<20)
		for {
			seg, local, ok := f.next(ctx)
			if !ok {
				return
			}
			fetch := f.fetch
			if local != nil {
				fetch = func(_ context.Context, seg helperapi.SegmentInfo, buf []byte) error {
					return f.readBack(local, seg, buf)
				}
			}
			if err := fetch(ctx, seg, buf); err != nil {
				f.err = fmt.Errorf("fetching the archive from the helper: %w", err)
				if ctx.Err() == nil {
					onError(f.err)
				}
				return
			}
		}
	}()
	return f
}

// add queues an announced segment. It never blocks: the helper's events must
// keep flowing.
func (f *segmentFetcher) add(seg helperapi.SegmentInfo) {
	f.mu.Lock()
	f.queue = append(f.queue, seg)
	f.mu.Unlock()
	f.signal()
}

// readLocal says that the helper writes the archive into file itself: the
// announced parts are read back from it. Call it before any segment is added.
func (f *segmentFetcher) readLocal(file *os.File) {
	f.mu.Lock()
	f.local = file
	f.mu.Unlock()
}

// close says that no segment follows: the fetcher ends once the queue is empty.
func (f *segmentFetcher) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.signal()
}

func (f *segmentFetcher) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *segmentFetcher) next(ctx context.Context) (helperapi.SegmentInfo, *os.File, bool) {
	for {
		f.mu.Lock()
		if len(f.queue) > 0 {
			seg := f.queue[0]
			f.queue = f.queue[1:]
			local := f.local
			f.mu.Unlock()
			return seg, local, true
		}
		closed := f.closed
		f.mu.Unlock()
		if closed {
			return helperapi.SegmentInfo{}, nil, false
		}
		select {
		case <-f.wake:
		case <-ctx.Done():
			return helperapi.SegmentInfo{}, nil, false
		}
	}
}

// fetch copies one segment into f.w: a tar holding that one file.
func (f *segmentFetcher) fetch(ctx context.Context, seg helperapi.SegmentInfo, buf []byte) error {
	if seg.Index != f.fetched {
		return fmt.Errorf("segment %d announced where %d was expected", seg.Index, f.fetched)
	}
	p := helperapi.ArchiveSegment(helperapi.ArchiveFile, seg.Index)
	rc, _, err := f.api.CopyFromContainer(ctx, f.id, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		return fmt.Errorf("segment %d: %w", seg.Index, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size != seg.Bytes {
		return fmt.Errorf("segment %d: %s is not a file of %d bytes", seg.Index, p, seg.Bytes)
	}
	n, err := io.CopyBuffer(f.w, io.LimitReader(tr, seg.Bytes), buf)
	if err != nil {
		return fmt.Errorf("segment %d: %w", seg.Index, err)
	}
	if n != seg.Bytes {
		return fmt.Errorf("segment %d: %d bytes received, %d announced", seg.Index, n, seg.Bytes)
	}
	f.fetched++
	f.bytes += n
	return nil
}

// readBack passes the announced part of the archive the helper wrote into
// file on to f.w (which checks and counts it, and writes nothing).
func (f *segmentFetcher) readBack(file *os.File, seg helperapi.SegmentInfo, buf []byte) error {
	if seg.Index != f.fetched {
		return fmt.Errorf("part %d announced where %d was expected", seg.Index, f.fetched)
	}
	n, err := io.CopyBuffer(f.w, io.NewSectionReader(file, f.bytes, seg.Bytes), buf)
	if err != nil {
		return fmt.Errorf("reading back what the helper wrote: %w", err)
	}
	if n != seg.Bytes {
		return fmt.Errorf("the helper announced %d bytes at offset %d of the archive, %d are there", seg.Bytes, f.bytes, n)
	}
	f.fetched++
	f.bytes += n
	return nil
}

// wait waits until every announced segment is fetched (call close first), and
// says whether all were.
func (f *segmentFetcher) wait() error {
	<-f.done
	return f.err
}

// stop abandons the fetching and waits for the goroutine to end.
func (f *segmentFetcher) stop() {
	f.cancel()
	<-f.done
}
