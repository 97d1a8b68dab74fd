package helperrun

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// segmentAPI serves helper files as Docker's archive API does: a tar holding
// the one file.
type segmentAPI struct {
	client.APIClient
	mu    sync.Mutex
	files map[string][]byte
	asked []string
}

func (s *segmentAPI) CopyFromContainer(_ context.Context, _, p string) (io.ReadCloser, container.PathStat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, p)
	b, ok := s.files[p]
	if !ok {
		return nil, container.PathStat{}, errors.New("no such file: " + p)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: p[1:], Size: int64(len(b)), Mode: 0o600, Typeflag: tar.TypeReg})
	_, _ = tw.Write(b)
	_ = tw.Close()
	return io.NopCloser(&buf), container.PathStat{}, nil
}

// Segments announced one after another arrive whole and in order; add never
// blocks, and wait returns once close was called and all are fetched.
func TestSegmentFetcher(t *testing.T) {
	api := &segmentAPI{files: map[string][]byte{}}
	var want bytes.Buffer
	for i, part := range []string{"first segment ", "second ", "and the last"} {
		api.files[helperapi.ArchiveSegment(helperapi.ArchiveFile, i)] = []byte(part)
		want.WriteString(part)
	}
	var got bytes.Buffer
	f := startSegmentFetcher(context.Background(), api, "helper", &got, func(err error) { t.Errorf("unexpected error: %v", err) })
	for i := 0; i < 3; i++ {
		f.add(helperapi.SegmentInfo{Index: i, Bytes: int64(len(api.files[helperapi.ArchiveSegment(helperapi.ArchiveFile, i)]))})
	}
	f.close()
	assert.NilError(t, f.wait())
	assert.Equal(t, got.String(), want.String())
	assert.Equal(t, f.fetched, 3)
	f.stop()
}

// A segment whose size is not the announced one, or that is missing, stops
// the fetching with an error naming it, reported through onError.
func TestSegmentFetcherRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		seg  helperapi.SegmentInfo
		want string
	}{
		{"wrong size", helperapi.SegmentInfo{Index: 0, Bytes: 4}, "segment 0"},
		{"out of order", helperapi.SegmentInfo{Index: 1, Bytes: 5}, "segment 1 announced where 0 was expected"},
		{"missing", helperapi.SegmentInfo{Index: 0, Bytes: 5}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &segmentAPI{files: map[string][]byte{helperapi.ArchiveSegment(helperapi.ArchiveFile, 0): []byte("12345")}}
			if tc.name == "missing" {
				api.files = map[string][]byte{}
			}
			var reported error
			var mu sync.Mutex
			f := startSegmentFetcher(context.Background(), api, "helper", io.Discard, func(err error) { mu.Lock(); reported = err; mu.Unlock() })
			f.add(tc.seg)
			f.close()
			err := f.wait()
			assert.Check(t, is.ErrorContains(err, tc.want))
			mu.Lock()
			assert.Check(t, reported != nil && strings.Contains(reported.Error(), tc.want))
			mu.Unlock()
		})
	}
}

// stop ends a fetcher that still waits for segments.
func TestSegmentFetcherStop(t *testing.T) {
	f := startSegmentFetcher(context.Background(), &segmentAPI{}, "helper", io.Discard, func(error) {})
	f.stop()
	assert.NilError(t, f.wait())
}
