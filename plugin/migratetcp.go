package plugin

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/xcheckpoint/docker-xcheckpoint/internal/helperrun"
)

func networkInspectOptions() network.InspectOptions { return network.InspectOptions{} }

// establishedConnections names the container's established TCP connections,
// read from its /proc/net/tcp and tcp6 through `cat` in the container (an
// image without cat: it says it could not list them).
func establishedConnections(ctx context.Context, s *helperrun.Session, id string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ex, err := s.API.ContainerExecCreate(ctx, id, container.ExecOptions{
		Cmd: []string{"cat", "/proc/net/tcp", "/proc/net/tcp6"}, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return fmt.Sprintf("listing them failed (%v)", err)
	}
	att, err := s.API.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return fmt.Sprintf("listing them failed (%v)", err)
	}
	defer att.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, att.Reader); err != nil {
		return fmt.Sprintf("listing them failed (%v)", err)
	}
	conns := parseEstablished(out.String())
	if out.Len() == 0 {
		return fmt.Sprintf("they could not be listed (cat /proc/net/tcp in the container: %s)", strings.TrimSpace(errOut.String()))
	}
	if len(conns) == 0 {
		return "none is established now"
	}
	return "now established: " + strings.Join(conns, ", ")
}

// parseEstablished lists "local -> remote" for each ESTABLISHED (state 01)
// line of /proc/net/tcp or tcp6 contents.
func parseEstablished(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" {
			continue
		}
		l, lok := procAddr(f[1])
		r, rok := procAddr(f[2])
		if lok && rok {
			out = append(out, l+" -> "+r)
		}
	}
	return out
}

// procAddr reads /proc/net/tcp's "ADDR:PORT" (the address in the kernel's
// byte order, 32-bit words).
func procAddr(s string) (string, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", false
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(ip[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port))), true
}
