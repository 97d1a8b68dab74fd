package helper

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/xcheckpoint/docker-xcheckpoint/helperapi"
)

// segmentWriter writes the archive as numbered segment files
// (helperapi.ArchiveSegment), the first of at most first bytes and each next
// one of at most twice its predecessor's limit, up to max; it announces each one
// on the emitter once it is complete and closed: the plugin fetches it
// through Docker's archive API while the next one is being written, so the
// transfer overlaps the compression instead of following it.
type segmentWriter struct {
	prefix string
	first  int64
	max    int64
	// limit is the current segment's size limit (first, then doubling).
	limit int64
	em    *helperapi.Emitter
	cur   *os.File
	curN  int64
	count int
}

func (s *segmentWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if s.limit == 0 {
			s.limit = min(max(s.first, 1), s.max)
		}
		if s.cur == nil {
			f, err := os.OpenFile(helperapi.ArchiveSegment(s.prefix, s.count), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return written, err
			}
			s.cur, s.curN = f, 0
		}
		n, err := s.cur.Write(p[:min(int64(len(p)), s.limit-s.curN)])
		written += n
		s.curN += int64(n)
		p = p[n:]
		if err != nil {
			return written, err
		}
		if s.curN == s.limit {
			if err := s.end(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// segmentBytes are the first and largest segment sizes
// (helperapi.ArchiveFirstSegmentBytes, helperapi.ArchiveSegmentBytes), or the
// tests' value of helperapi.EnvTestSegmentBytes for both.
func segmentBytes() (first, largest int64) {
	if n, err := strconv.ParseInt(os.Getenv(helperapi.EnvTestSegmentBytes), 10, 64); err == nil && n > 0 {
		return n, n
	}
	return helperapi.ArchiveFirstSegmentBytes, helperapi.ArchiveSegmentBytes
}

// end closes the current segment and announces it.
func (s *segmentWriter) end() error {
	f, n := s.cur, s.curN
	s.cur = nil
	if err := f.Close(); err != nil {
		return err
	}
	seg := helperapi.SegmentInfo{Index: s.count, Bytes: n}
	s.count++
	s.limit = min(2*s.limit, s.max)
	if err := s.em.Emit(helperapi.Event{Kind: helperapi.KindSegment, Segment: &seg}); err != nil {
		return fmt.Errorf("announcing archive segment %d: %w", seg.Index, err)
	}
	return nil
}

// Close ends the last segment.
func (s *segmentWriter) Close() error {
	if s.cur == nil {
		return nil
	}
	return s.end()
}

// remove deletes every segment written (after a failure).
func (s *segmentWriter) remove() {
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
		s.count++
	}
	for i := 0; i < s.count; i++ {
		_ = os.Remove(helperapi.ArchiveSegment(s.prefix, i))
	}
}

// cpuTime is this process's CPU time so far, user and system, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS is this process's peak resident memory so far, in bytes.
func peakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss * 1024
}

// PrivateMounts is set by the helper's main (in its container, never in
// tests): before writing an archive, the helper then stops receiving mounts
// from the daemon's mount namespace (see privateRoot).
var PrivateMounts = false

// privateRoot makes the helper's mounts private. runc makes a container's
// root a slave of the daemon's, and each `docker cp` from the helper has the
// daemon bind the helper's mounts (Docker's data root, recursively) under the
// helper's root: they propagated into the helper and stayed, each copy
// nesting the previous ones, so that mounts doubled with every segment
// fetched (147, 333, 705, 1449, 25938 were seen) until mount(2) failed with
// ENOSPC. The helper mounts nothing that the daemon must see.
func privateRoot() error {
	return syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, "")
}
