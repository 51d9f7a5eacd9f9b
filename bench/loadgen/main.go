// Command loadgen is an open-loop HTTP load generator for the OpenAI-shaped
// endpoints: it sends requests on a fixed schedule (rate R for D seconds,
// after W seconds of unrecorded warm-up), each in its own goroutine, and
// measures latency from the *scheduled* send time, so a stalled server shows
// up in the percentiles instead of slowing the sender down (no coordinated
// omission). Standard library only.
//
//	loadgen -url http://127.0.0.1:8080/v1 -mode chat -rate 1000 -duration 15s -warmup 3s
//	loadgen -url http://127.0.0.1:8080 -mode grpc -body complete.bin -rate 1000 -duration 15s
//
// Modes grpc and connect call one unary RPC (-method) with the request in
// -body: for grpc, the whole gRPC message frame (5-byte prefix and protobuf),
// sent over cleartext HTTP/2 (h2c, prior knowledge); for connect, the Connect
// protocol's JSON over HTTP/1.1. The caller builds the bytes, so this program
// needs no protobuf code.
//
// It prints one JSON object on stdout.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

// durationFlag accepts Go durations ("15s", "500ms") and bare numbers of seconds ("15").
type durationFlag struct{ d time.Duration }

func (f *durationFlag) String() string { return f.d.String() }
func (f *durationFlag) Set(v string) error {
	if d, err := time.ParseDuration(v); err == nil {
		f.d = d
		return nil
	}
	var secs float64
	if _, err := fmt.Sscanf(v, "%g", &secs); err != nil {
		return fmt.Errorf("bad duration %q", v)
	}
	f.d = time.Duration(secs * float64(time.Second))
	return nil
}

const userText = "You are helping me plan a small benchmark. " // 43 chars

func chatBody(stream bool) []byte {
	msg := strings.Repeat(userText, 22)[:900]
	req := map[string]any{
		"model":    "gpt-4o-mini",
		"messages": []map[string]string{{"role": "user", "content": msg}},
	}
	if stream {
		req["stream"] = true
		req["stream_options"] = map[string]bool{"include_usage": true}
	}
	b, _ := json.Marshal(req)
	return b
}

// responsesBody is the chat request as a Responses API request: the same
// 900-character prompt as input.
func responsesBody(stream bool) []byte {
	req := map[string]any{
		"model": "gpt-4o-mini",
		"input": strings.Repeat(userText, 22)[:900],
	}
	if stream {
		req["stream"] = true
	}
	b, _ := json.Marshal(req)
	return b
}

func embedBody(base64 bool) []byte {
	req := map[string]any{
		"model": "text-embedding-3-small",
		"input": strings.Repeat("The food was delicious and the waiter was friendly. ", 4),
	}
	if base64 {
		req["encoding_format"] = "base64"
	}
	b, _ := json.Marshal(req)
	return b
}

type sample struct {
	total   float64 // ms from scheduled send to end of body
	ttft    float64 // ms from scheduled send to first body bytes (stream)
	sendLag float64 // ms from scheduled send to the goroutine starting the request
	err     string
}

type result struct {
	Mode         string   `json:"mode"`
	URL          string   `json:"url"`
	Rate         float64  `json:"rate"`
	Duration     float64  `json:"duration"`
	Warmup       float64  `json:"warmup"`
	Sent         int      `json:"sent"`
	OK           int      `json:"ok"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"errorSamples"`
	P50          float64  `json:"p50"`
	P90          float64  `json:"p90"`
	P99          float64  `json:"p99"`
	Max          float64  `json:"max"`
	Mean         float64  `json:"mean"`
	TTFTP50      *float64 `json:"ttft_p50,omitempty"`
	TTFTP90      *float64 `json:"ttft_p90,omitempty"`
	TTFTP99      *float64 `json:"ttft_p99,omitempty"`
	TTFTMax      *float64 `json:"ttft_max,omitempty"`
	// How late the generator itself started requests relative to the
	// schedule: if this is large, the rig (not the target) is the limit.
	SendLagP99 float64 `json:"sendLag_p99"`
	SendLagMax float64 `json:"sendLag_max"`
	// Achieved send rate over the recorded window.
	AchievedRate float64 `json:"achievedRate"`
	// CPU time used by this process (user+system), ms, whole run.
	CPUms float64 `json:"cpu_ms"`
	// Wall time of the whole run including warm-up and drain, ms.
	WallMs float64 `json:"wall_ms"`
}

// percentile uses the nearest-rank method on a sorted slice.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func main() {
	baseURL := flag.String("url", "http://127.0.0.1:8080/v1", "base URL, e.g. http://127.0.0.1:8080/v1; several, comma-separated, take requests in turn")
	mode := flag.String("mode", "chat", "chat | stream | embed | responses | responses-stream | grpc | connect")
	rate := flag.Float64("rate", 1000, "requests per second")
	duration := &durationFlag{15 * time.Second}
	warmup := &durationFlag{3 * time.Second}
	timeout := &durationFlag{10 * time.Second}
	flag.Var(duration, "duration", "recorded duration (e.g. 15s or 15)")
	flag.Var(warmup, "warmup", "unrecorded warm-up before the recorded window (e.g. 3s or 3)")
	flag.Var(timeout, "timeout", "per-request timeout, including reading the body")
	var headers headerList
	flag.Var(&headers, "header", `extra request header "Name: value" (repeatable)`)
	embedB64 := flag.Bool("embed-base64", false, `embed mode: ask for "encoding_format":"base64"`)
	unique := flag.Bool("unique", false, "chat modes: make every request's prompt distinct (a cache never hits)")
	bodyFile := flag.String("body", "", "grpc, connect: file holding the request body (grpc: the framed message)")
	method := flag.String("method", "switchyard.v1.ChatService/Complete", "grpc, connect: the RPC, appended to -url as /<method>")
	flag.Parse()

	if *rate <= 0 || duration.d <= 0 || warmup.d < 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -rate and -duration must be > 0, -warmup >= 0")
		os.Exit(2)
	}

	var path string
	var body []byte
	stream := false
	switch *mode {
	case "chat":
		path, body = "/chat/completions", chatBody(false)
	case "stream":
		path, body, stream = "/chat/completions", chatBody(true), true
	case "embed":
		path, body = "/embeddings", embedBody(*embedB64)
	case "responses":
		path, body = "/responses", responsesBody(false)
	case "responses-stream":
		path, body, stream = "/responses", responsesBody(true), true
		responsesStream = true
	case "grpc", "connect":
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: -mode %s needs -body: %v\n", *mode, err)
			os.Exit(2)
		}
		path, body = "/"+strings.TrimPrefix(*method, "/"), b
		rpcMode = *mode
	default:
		fmt.Fprintf(os.Stderr, "loadgen: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	// Several base URLs (instances of one service) take the requests in turn.
	var targets []string
	for _, u := range strings.Split(*baseURL, ",") {
		targets = append(targets, strings.TrimRight(strings.TrimSpace(u), "/")+path)
	}
	target := strings.Join(targets, ",")

	hdr := http.Header{}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Accept", "application/json")
	if stream {
		hdr.Set("Accept", "text/event-stream")
	}
	switch rpcMode {
	case "grpc":
		// What a gRPC client sends; te: trailers is required by the protocol.
		hdr.Del("Accept")
		hdr.Set("Content-Type", "application/grpc")
		hdr.Set("Te", "trailers")
	case "connect":
		hdr.Set("Connect-Protocol-Version", "1")
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "loadgen: bad -header %q (want \"Name: value\")\n", h)
			os.Exit(2)
		}
		hdr.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}

	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit
		MaxIdleConnsPerHost: 100000,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // measure the bytes on the wire, no transparent gzip
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      16 << 10,
	}
	if rpcMode == "grpc" {
		// gRPC needs HTTP/2; over http:// that is h2c with prior knowledge
		// (Go 1.24+). Requests then share one connection as streams, as a gRPC
		// client's channel does.
		var protocols http.Protocols
		protocols.SetUnencryptedHTTP2(true)
		transport.Protocols = &protocols
	}
	client := &http.Client{Transport: transport}

	interval := time.Duration(float64(time.Second) / *rate)
	nWarm := int(math.Round(warmup.d.Seconds() * *rate))
	nRec := int(math.Round(duration.d.Seconds() * *rate))
	total := nWarm + nRec

	samples := make([]sample, nRec)
	var wg sync.WaitGroup

	// With -unique, the prompt's first 12 characters are replaced by a request counter.
	var seq atomic.Int64
	marker := []byte(userText[:12])
	do := func(sched time.Time, idx int) {
		defer wg.Done()
		var s sample
		s.sendLag = ms(time.Since(sched))
		ctx, cancel := context.WithTimeout(context.Background(), timeout.d)
		defer cancel()
		body := body
		if *unique && *mode != "embed" {
			body = bytes.Replace(body, marker, []byte(fmt.Sprintf("%012d", seq.Add(1))), 1)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, targets[(idx+nWarm)%len(targets)], bytes.NewReader(body))
		if err != nil {
			s.err = err.Error()
		} else {
			req.Header = hdr.Clone()
			req.ContentLength = int64(len(body))
			s = exchange(client, req, sched, stream, s)
		}
		if idx >= 0 {
			samples[idx] = s
		}
	}

	// The pacing loop owns an OS thread and sleeps with nanosleep(2): Go's
	// timers ride on epoll_wait's millisecond timeouts, which would quantise
	// a 1 ms schedule to the next millisecond. A second P keeps the request
	// goroutines running while this thread sleeps, even when the process is
	// pinned to one core.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	runtime.LockOSThread()
	// Connections are opened on demand during warm-up, like everything else.
	start := time.Now()
	recStart := start.Add(time.Duration(nWarm) * interval)
	for i := 0; i < total; i++ {
		sched := start.Add(time.Duration(i) * interval)
		if d := time.Until(sched); d > 0 {
			preciseSleep(d)
		}
		idx := i - nWarm // < 0 during warm-up: not recorded
		wg.Add(1)
		go do(sched, idx)
	}
	lastSend := time.Now()
	wg.Wait()
	wall := time.Since(start)

	res := result{
		Mode:         *mode,
		URL:          target,
		Rate:         *rate,
		Duration:     duration.d.Seconds(),
		Warmup:       warmup.d.Seconds(),
		Sent:         nRec,
		ErrorSamples: []string{},
		WallMs:       round3(ms(wall)),
	}
	if span := lastSend.Sub(recStart); span > 0 && nRec > 1 {
		res.AchievedRate = math.Round(float64(nRec)/span.Seconds()*10) / 10
	}
	totals := make([]float64, 0, nRec)
	ttfts := make([]float64, 0, nRec)
	lags := make([]float64, 0, nRec)
	seen := map[string]bool{}
	var sum float64
	for _, s := range samples {
		lags = append(lags, s.sendLag)
		if s.err != "" {
			res.Errors++
			if !seen[s.err] && len(res.ErrorSamples) < 3 {
				seen[s.err] = true
				res.ErrorSamples = append(res.ErrorSamples, s.err)
			}
			continue
		}
		res.OK++
		totals = append(totals, s.total)
		sum += s.total
		if stream {
			ttfts = append(ttfts, s.ttft)
		}
	}
	slices.Sort(totals)
	slices.Sort(ttfts)
	slices.Sort(lags)
	res.P50 = round3(percentile(totals, 0.50))
	res.P90 = round3(percentile(totals, 0.90))
	res.P99 = round3(percentile(totals, 0.99))
	if len(totals) > 0 {
		res.Max = round3(totals[len(totals)-1])
		res.Mean = round3(sum / float64(len(totals)))
	}
	if stream {
		p := func(v float64) *float64 { v = round3(v); return &v }
		res.TTFTP50 = p(percentile(ttfts, 0.50))
		res.TTFTP90 = p(percentile(ttfts, 0.90))
		res.TTFTP99 = p(percentile(ttfts, 0.99))
		mx := 0.0
		if len(ttfts) > 0 {
			mx = ttfts[len(ttfts)-1]
		}
		res.TTFTMax = p(mx)
	}
	res.SendLagP99 = round3(percentile(lags, 0.99))
	if len(lags) > 0 {
		res.SendLagMax = round3(lags[len(lags)-1])
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		res.CPUms = round3(ms(cpu))
	}

	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// preciseSleep sleeps for d with nanosleep(2), which the kernel honours to
// tens of microseconds (unlike time.Sleep under an idle runtime).
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		if err := syscall.Nanosleep(&ts, &rem); err != syscall.EINTR {
			return
		}
		ts = rem
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

var doneMarker = []byte("data: [DONE]")

// Responses API streams end with this event rather than [DONE].
var completedMarker = []byte("event: response.completed")
var responsesStream = false

// rpcMode is "grpc" or "connect" in those modes, else empty.
var rpcMode = ""

// grpcCheck returns why a gRPC answer is an error, or "": it must be HTTP/2
// status 200, one complete uncompressed message frame, and grpc-status 0 (a
// trailer, or a header in a trailers-only answer).
func grpcCheck(resp *http.Response, body []byte) string {
	status := resp.Trailer.Get("Grpc-Status")
	if status == "" {
		status = resp.Header.Get("Grpc-Status")
	}
	if resp.ProtoMajor != 2 {
		return fmt.Sprintf("grpc: answered over HTTP/%d.%d, not HTTP/2", resp.ProtoMajor, resp.ProtoMinor)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP %d (grpc-status %q)", resp.StatusCode, status)
	}
	if status != "0" {
		msg := resp.Trailer.Get("Grpc-Message")
		if msg == "" {
			msg = resp.Header.Get("Grpc-Message")
		}
		return fmt.Sprintf("grpc-status %q: %s", status, msg)
	}
	if len(body) < 5 || body[0] != 0 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
		return fmt.Sprintf("grpc: not one uncompressed message frame (%d bytes)", len(body))
	}
	return ""
}

// exchange performs one request and reads the whole body, timing it against
// the scheduled send time.
func exchange(client *http.Client, req *http.Request, sched time.Time, stream bool, s sample) sample {
	resp, err := client.Do(req)
	if err != nil {
		s.err = shortErr(err)
		return s
	}
	defer resp.Body.Close()

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var tail []byte // last bytes of the body, to check how it ended
	var whole []byte
	first := true
	completed := false
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if first {
				s.ttft = ms(time.Since(sched))
				first = false
			}
			if stream {
				tail = append(tail, buf[:n]...)
				if responsesStream && !completed && bytes.Contains(tail, completedMarker) {
					completed = true
				}
				if len(tail) > 64 {
					tail = tail[len(tail)-64:]
				}
			} else {
				whole = append(whole, buf[:n]...)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			s.err = "reading body: " + shortErr(rerr)
			return s
		}
	}
	s.total = ms(time.Since(sched))

	if rpcMode == "grpc" {
		s.err = grpcCheck(resp, whole)
		return s
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b := whole
		if stream {
			b = tail
		}
		if len(b) > 160 {
			b = b[:160]
		}
		s.err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		return s
	}
	if stream {
		if first {
			s.err = "stream: empty body"
		} else if responsesStream {
			if !completed {
				s.err = fmt.Sprintf("stream: no response.completed event (ends %q)", tail)
			}
		} else if !bytes.HasSuffix(bytes.TrimRight(tail, "\r\n "), doneMarker) {
			s.err = fmt.Sprintf("stream: body does not end with data: [DONE] (ends %q)", tail)
		}
		return s
	}
	if !json.Valid(whole) {
		b := whole
		if len(b) > 80 {
			b = b[len(b)-80:]
		}
		s.err = fmt.Sprintf("body is not valid JSON (%d bytes, ends %q)", len(whole), b)
	}
	return s
}

func shortErr(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	msg := err.Error()
	// Drop the per-request URL so identical failures group into one sample.
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			msg = inner.Error()
		}
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
