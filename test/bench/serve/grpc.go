package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/rayk8s/rayk8s/internal/serve/grpcproxy"
)

// startGRPCFloor runs a Go gRPC server answering every method with an
// empty message, with the proxy's raw-bytes codec: what gRPC itself costs.
func startGRPCFloor() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(grpcproxy.Codec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var in []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		out := []byte{}
		return ss.SendMsg(&out)
	}))
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String()
}

func grpcConn(addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(grpcproxy.Codec{})))
	if err != nil {
		panic(err)
	}
	return conn
}

func appContext(app string) context.Context {
	if app == "" {
		return context.Background()
	}
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs("application", app))
}

// grpcCaller makes unary calls; all clients share one connection, as
// gRPC clients do (HTTP/2 multiplexing).
func grpcCaller(addr, app, method string) func() caller {
	conn := grpcConn(addr)
	ctx := appContext(app)
	return func() caller {
		return func() error {
			in, out := []byte{}, []byte(nil)
			return conn.Invoke(ctx, method, &in, &out)
		}
	}
}

// streamer runs one streamed call and returns when each chunk arrived.
type streamer func() (start time.Time, arrivals []time.Time, err error)

func grpcStreamer(addr, app, query string) streamer {
	conn := grpcConn(addr)
	ctx := appContext(app)
	return func() (time.Time, []time.Time, error) {
		start := time.Now()
		st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/bench.Stream/Tokens")
		if err != nil {
			return start, nil, err
		}
		req := []byte(query)
		if err := st.SendMsg(&req); err != nil {
			return start, nil, err
		}
		_ = st.CloseSend()
		var arrivals []time.Time
		for {
			var m []byte
			err := st.RecvMsg(&m)
			if errors.Is(err, io.EOF) {
				return start, arrivals, nil
			}
			if err != nil {
				return start, arrivals, err
			}
			arrivals = append(arrivals, time.Now())
		}
	}
}

// httpStreamer counts 32-byte chunks as they are read.
func httpStreamer(url string) streamer {
	client := &http.Client{Timeout: time.Minute}
	return func() (time.Time, []time.Time, error) {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			return start, nil, err
		}
		defer resp.Body.Close()
		var arrivals []time.Time
		buf := make([]byte, 32)
		for {
			_, err := io.ReadFull(resp.Body, buf)
			if errors.Is(err, io.EOF) {
				return start, arrivals, nil
			}
			if err != nil {
				return start, arrivals, err
			}
			arrivals = append(arrivals, time.Now())
		}
	}
}

type streamResult struct {
	chunks   int
	busy     time.Duration
	firsts   []time.Duration
	failures int
}

// measureStream runs n streams one after another.
func measureStream(s streamer, n int) streamResult {
	var r streamResult
	for range n {
		start, arrivals, err := s()
		if err != nil || len(arrivals) == 0 {
			r.failures++
			continue
		}
		r.chunks += len(arrivals)
		r.busy += arrivals[len(arrivals)-1].Sub(start)
		r.firsts = append(r.firsts, arrivals[0].Sub(start))
	}
	return r
}

func (r streamResult) report(name string) {
	slices.Sort(r.firsts)
	first := "-"
	if len(r.firsts) > 0 {
		first = fmtDur(r.firsts[len(r.firsts)/2]) + " p50"
	}
	line := fmt.Sprintf("%-34s %12.0f %14s %12d", name, float64(r.chunks)/r.busy.Seconds(), first, r.chunks)
	if r.failures > 0 {
		line += fmt.Sprintf("  (%d failed)", r.failures)
	}
	fmt.Println(line)
}
