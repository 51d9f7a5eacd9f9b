// Command standin is a stand-in OpenAI upstream for benchmarks: it answers
// chat completions (JSON and SSE), embeddings and the model list with fixed,
// pre-built bytes, so that it costs far less per request than the gateway
// under test. Standard library only.
//
//	standin -addr 127.0.0.1:0 -delay 0ms -chunks 20 -chunk-gap 0 [-fail-rate 0.3 -hang-rate 0.05]
//
// Fault injection for chaos runs (both default to 0, so ordinary benchmarks
// are unaffected): each chat or embeddings request independently fails with
// HTTP 500 and OpenAI's server-error body with probability -fail-rate, or
// hangs (no headers, no body) until the client goes away with probability
// -hang-rate.
//
// More fault kinds for chat completions, for the soak (bench/soak.ts); all
// default to 0 and are drawn after -fail-rate and -hang-rate from the same
// roll, so the rates add up (at most 1 in all):
//
//	-reset-rate          the connection is reset (RST) before any answer
//	-headers-reset-rate  200 and its headers, then a reset: before the first
//	                     SSE event, or after the first bytes of a JSON body
//	-cut-rate            a reset mid-answer: after the role chunk and half the
//	                     content chunks of a stream, or half a JSON body
//	-slow-rate           the answer starts after a delay drawn from (0, -slow-max]
//	-truncate-rate       the body ends early but cleanly: half a JSON body
//	                     under its full Content-Length, or a stream (delimited
//	                     by the connection's close) cut inside its first event
//	-garbage-rate        200 with a body that is not JSON, or an SSE event whose
//	                     data is not JSON
//
// With -soak, two more endpoints: POST /_soak/storm?kind=429|hang|500&seconds=S
// [&retry-after=N] answers every chat request that way for S seconds (429s
// carry Retry-After: N); GET /_soak/log lists every chat request answered so
// far as JSON lines {"id","fault","stream","done","ms"}: the id is the text
// between "[soak:" and "]" in the request body (the caller's marker), fault
// what was injected ("" for none), done whether the whole answer was written.
//
// When ready it prints one line, "LISTENING <port>", on stdout.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	chatModel  = "gpt-4o-mini-2024-07-18"
	embedModel = "text-embedding-3-small"
	embedDims  = 256
	created    = 1735689600 // 2025-01-01T00:00:00Z, fixed so the bytes never change
)

// content is the assistant message: about 900 characters.
var content = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20)[:900]

// ---- OpenAI response shapes (field order follows OpenAI's own output) ----

type message struct {
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

type choice struct {
	Index        int       `json:"index"`
	Message      message   `json:"message"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason string    `json:"finish_reason"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type completionDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

type usage struct {
	PromptTokens            int               `json:"prompt_tokens"`
	CompletionTokens        int               `json:"completion_tokens"`
	TotalTokens             int               `json:"total_tokens"`
	PromptTokensDetails     promptDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails completionDetails `json:"completion_tokens_details"`
}

type completion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []choice `json:"choices"`
	Usage             usage    `json:"usage"`
	ServiceTier       string   `json:"service_tier"`
	SystemFingerprint string   `json:"system_fingerprint"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        delta     `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	ServiceTier       string        `json:"service_tier"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is written only when the client asked for include_usage
	// (then it is null on every chunk but the last, as OpenAI does).
	Usage json.RawMessage `json:"usage,omitempty"`
}

type embeddingData struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type embeddingUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type embeddingList struct {
	Object string          `json:"object"`
	Data   []embeddingData `json:"data"`
	Model  string          `json:"model"`
	Usage  embeddingUsage  `json:"usage"`
}

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type modelList struct {
	Object string  `json:"object"`
	Data   []model `json:"data"`
}

// ---- pre-built responses ----

type responses struct {
	chat        []byte
	streamPlain [][]byte // SSE events without usage
	streamUsage [][]byte // SSE events with include_usage
	embedFloat  []byte
	embedBase64 []byte
	models      []byte
	notFound    []byte
	serverError []byte
	rateLimited []byte
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func sseEvent(v any) []byte {
	var b bytes.Buffer
	b.WriteString("data: ")
	b.Write(mustJSON(v))
	b.WriteString("\n\n")
	return b.Bytes()
}

func buildResponses(nChunks int) *responses {
	r := &responses{}
	u := usage{PromptTokens: 220, CompletionTokens: 200, TotalTokens: 420}

	r.chat = mustJSON(completion{
		ID:      "chatcmpl-standin0000000000000000000001",
		Object:  "chat.completion",
		Created: created,
		Model:   chatModel,
		Choices: []choice{{
			Index:        0,
			Message:      message{Role: "assistant", Content: content},
			FinishReason: "stop",
		}},
		Usage:             u,
		ServiceTier:       "default",
		SystemFingerprint: "fp_standin",
	})

	build := func(withUsage bool) [][]byte {
		var null json.RawMessage
		if withUsage {
			null = json.RawMessage("null")
		}
		base := func(choices []chunkChoice, usageRaw json.RawMessage) chunk {
			return chunk{
				ID:                "chatcmpl-standin0000000000000000000002",
				Object:            "chat.completion.chunk",
				Created:           created,
				Model:             chatModel,
				ServiceTier:       "default",
				SystemFingerprint: "fp_standin",
				Choices:           choices,
				Usage:             usageRaw,
			}
		}
		var events [][]byte
		empty := ""
		events = append(events, sseEvent(base([]chunkChoice{{Delta: delta{Role: "assistant", Content: &empty}}}, null)))
		// Split the content into nChunks pieces of roughly equal size.
		for i := 0; i < nChunks; i++ {
			lo := len(content) * i / nChunks
			hi := len(content) * (i + 1) / nChunks
			piece := content[lo:hi]
			events = append(events, sseEvent(base([]chunkChoice{{Delta: delta{Content: &piece}}}, null)))
		}
		stop := "stop"
		events = append(events, sseEvent(base([]chunkChoice{{Delta: delta{}, FinishReason: &stop}}, null)))
		if withUsage {
			events = append(events, sseEvent(base([]chunkChoice{}, mustJSON(u))))
		}
		events = append(events, []byte("data: [DONE]\n\n"))
		return events
	}
	r.streamPlain = build(false)
	r.streamUsage = build(true)

	vec := make([]float32, embedDims)
	var norm float64
	for i := range vec {
		vec[i] = float32(math.Sin(float64(i)*0.37) * 0.1)
		norm += float64(vec[i]) * float64(vec[i])
	}
	for i := range vec {
		vec[i] = float32(float64(vec[i]) / math.Sqrt(norm))
	}
	raw := make([]byte, 4*embedDims)
	for i, f := range vec {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	eu := embeddingUsage{PromptTokens: 8, TotalTokens: 8}
	r.embedFloat = mustJSON(embeddingList{
		Object: "list",
		Data:   []embeddingData{{Object: "embedding", Index: 0, Embedding: vec}},
		Model:  embedModel,
		Usage:  eu,
	})
	r.embedBase64 = mustJSON(embeddingList{
		Object: "list",
		Data:   []embeddingData{{Object: "embedding", Index: 0, Embedding: base64.StdEncoding.EncodeToString(raw)}},
		Model:  embedModel,
		Usage:  eu,
	})

	r.models = mustJSON(modelList{Object: "list", Data: []model{
		{ID: "gpt-4o-mini", Object: "model", Created: 1721172741, OwnedBy: "system"},
		{ID: "text-embedding-3-small", Object: "model", Created: 1705948997, OwnedBy: "system"},
	}})
	r.serverError = []byte(`{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`)
	r.rateLimited = []byte(`{"error":{"message":"Rate limit reached for gpt-4o-mini (stand-in storm). Please try again later.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
	r.notFound = []byte(`{"error":{"message":"Unknown request URL","type":"invalid_request_error","param":null,"code":"unknown_url"}}`)
	return r
}

// ---- server ----

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type server struct {
	res      *responses
	delay    time.Duration
	chunkGap time.Duration
	nChunks  int
	failRate float64
	hangRate float64
	// Chat-only fault kinds (soak); see the package comment.
	resetRate        float64
	headersResetRate float64
	cutRate          float64
	slowRate         float64
	slowMax          time.Duration
	truncateRate     float64
	garbageRate      float64
	soak             *soakState // nil unless -soak
}

// soakState is what -soak adds: the storm in force and the request log.
type soakState struct {
	mu         sync.Mutex
	stormKind  string
	stormUntil time.Time
	retryAfter string
	log        bytes.Buffer
}

// storm returns the storm in force ("" when none) and its Retry-After.
func (st *soakState) storm() (string, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stormKind == "" || time.Now().After(st.stormUntil) {
		return "", ""
	}
	return st.stormKind, st.retryAfter
}

func (st *soakState) record(id, fault string, stream, done bool) {
	line, _ := json.Marshal(struct {
		ID     string `json:"id"`
		Fault  string `json:"fault"`
		Stream bool   `json:"stream"`
		Done   bool   `json:"done"`
		Ms     int64  `json:"ms"`
	}{id, fault, stream, done, time.Now().UnixMilli()})
	st.mu.Lock()
	st.log.Write(line)
	st.log.WriteByte('\n')
	st.mu.Unlock()
}

func (s *server) soakControl(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	st := s.soak
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/_soak/storm":
		q := r.URL.Query()
		kind := q.Get("kind")
		secs, err := strconv.ParseFloat(q.Get("seconds"), 64)
		if (kind != "429" && kind != "hang" && kind != "500") || err != nil || secs <= 0 {
			writeJSON(w, http.StatusBadRequest, []byte(`{"error":"want kind=429|hang|500 and seconds>0"}`))
			return
		}
		st.mu.Lock()
		st.stormKind = kind
		st.stormUntil = time.Now().Add(time.Duration(secs * float64(time.Second)))
		st.retryAfter = q.Get("retry-after")
		st.mu.Unlock()
		writeJSON(w, http.StatusOK, []byte(`{"ok":true}`))
	case r.Method == http.MethodGet && r.URL.Path == "/_soak/log":
		st.mu.Lock()
		out := bytes.Clone(st.log.Bytes())
		st.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Write(out)
	default:
		writeJSON(w, http.StatusNotFound, s.res.notFound)
	}
}

// soakMarker is the text between "[soak:" and the next "]" in a request body, or "".
func soakMarker(b []byte) string {
	i := bytes.Index(b, []byte("[soak:"))
	if i < 0 {
		return ""
	}
	rest := b[i+6:]
	j := bytes.IndexByte(rest, ']')
	if j < 0 || j > 64 {
		return ""
	}
	return string(rest[:j])
}

// chatFault draws a chat request's fault: a storm in force, or one of the
// rate-drawn kinds (500 and hang first, as fault() draws them); "" for none.
func (s *server) chatFault() (kind, retryAfter string) {
	if s.soak != nil {
		if k, ra := s.soak.storm(); k != "" {
			return "storm-" + k, ra
		}
	}
	if s.failRate <= 0 && s.hangRate <= 0 && s.resetRate <= 0 && s.headersResetRate <= 0 && s.cutRate <= 0 &&
		s.slowRate <= 0 && s.truncateRate <= 0 && s.garbageRate <= 0 {
		return "", ""
	}
	x := rand.Float64()
	for _, k := range []struct {
		rate float64
		name string
	}{
		{s.failRate, "500"}, {s.hangRate, "hang"}, {s.resetRate, "reset"}, {s.headersResetRate, "headers-reset"},
		{s.cutRate, "cut"}, {s.slowRate, "slow"}, {s.truncateRate, "truncate"}, {s.garbageRate, "garbage"},
	} {
		if x < k.rate {
			return k.name, ""
		}
		x -= k.rate
	}
	return "", ""
}

// hijack takes the connection over from net/http (HTTP/1.1 only).
func hijack(w http.ResponseWriter) net.Conn {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return nil
	}
	return c
}

// reset closes c with a TCP RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// writeChunk writes one HTTP/1.1 chunk by hand (the connection is hijacked).
func writeChunk(c net.Conn, b []byte) error {
	_, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(b), b)
	return err
}

const sseHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"

// raw answers with an injected transport-level fault on the hijacked
// connection: reset, headers-reset, cut or truncate (see the package comment).
func (s *server) raw(w http.ResponseWriter, r *http.Request, kind string, stream bool, events [][]byte) {
	c := hijack(w)
	if c == nil {
		return
	}
	// A short pause before a reset lets the peer read what was sent: a RST
	// may make the kernel drop received bytes the application has not read yet.
	settle := func() { time.Sleep(30 * time.Millisecond) }
	body := s.res.chat
	jsonHead := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	switch {
	case kind == "reset":
		reset(c)
	case kind == "headers-reset" && stream:
		io.WriteString(c, sseHead+"Transfer-Encoding: chunked\r\n\r\n")
		settle()
		reset(c)
	case kind == "headers-reset":
		io.WriteString(c, jsonHead)
		c.Write(body[:32])
		settle()
		reset(c)
	case kind == "cut" && stream:
		io.WriteString(c, sseHead+"Transfer-Encoding: chunked\r\n\r\n")
		// The role chunk and the first half of the content chunks, paced like a whole stream.
		for i := 0; i <= s.nChunks/2; i++ {
			if writeChunk(c, events[i]) != nil {
				break
			}
			if s.chunkGap > 0 && i < s.nChunks {
				time.Sleep(s.chunkGap)
			}
		}
		settle()
		reset(c)
	case kind == "cut":
		io.WriteString(c, jsonHead)
		c.Write(body[:len(body)/2])
		settle()
		reset(c)
	case kind == "truncate" && stream:
		// No length and no chunking: the body ends where the connection does, here inside the first event.
		io.WriteString(c, sseHead+"Connection: close\r\n\r\n")
		c.Write(events[0][:len(events[0])/2])
		c.Close()
	case kind == "truncate":
		io.WriteString(c, jsonHead)
		c.Write(body[:len(body)/2])
		c.Close()
	}
}

// fault draws this request's injected fault: it answers 500 or hangs until
// the client leaves, and reports true when it did either.
func (s *server) fault(w http.ResponseWriter, r *http.Request) bool {
	if s.failRate <= 0 && s.hangRate <= 0 {
		return false
	}
	x := rand.Float64()
	switch {
	case x < s.failRate:
		writeJSON(w, http.StatusInternalServerError, s.res.serverError)
		return true
	case x < s.failRate+s.hangRate:
		<-r.Context().Done()
		return true
	}
	return false
}

// readBody reads the whole request body into a pooled buffer.
// The caller must return the buffer with bufPool.Put.
func readBody(r *http.Request) (*bytes.Buffer, error) {
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	_, err := io.Copy(b, r.Body)
	return b, err
}

func hasAny(body []byte, needles ...string) bool {
	for _, n := range needles {
		if bytes.Contains(body, []byte(n)) {
			return true
		}
	}
	return false
}

// wait sleeps for d unless the client goes away first; it reports whether
// the request is still alive.
func wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

func (s *server) chat(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	defer bufPool.Put(body)
	if err != nil {
		return
	}
	b := body.Bytes()
	stream := hasAny(b, `"stream":true`, `"stream": true`)
	withUsage := hasAny(b, `"include_usage":true`, `"include_usage": true`)
	kind, retryAfter := s.chatFault()
	done := false
	if s.soak != nil {
		id := soakMarker(b)
		defer func() { s.soak.record(id, kind, stream, done) }()
	}
	events := s.res.streamPlain
	if withUsage {
		events = s.res.streamUsage
	}
	switch kind {
	case "500", "storm-500":
		writeJSON(w, http.StatusInternalServerError, s.res.serverError)
		return
	case "hang", "storm-hang":
		<-r.Context().Done()
		return
	case "storm-429":
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeJSON(w, http.StatusTooManyRequests, s.res.rateLimited)
		return
	case "reset", "headers-reset", "cut", "truncate":
		s.raw(w, r, kind, stream, events)
		return
	case "garbage":
		if stream {
			h := w.Header()
			h["Content-Type"] = []string{"text/event-stream"}
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("data: <html><body>502 Bad Gateway</body></html>\n\n"))
		} else {
			h := w.Header()
			h["Content-Type"] = []string{"application/json"}
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		}
		return
	case "slow":
		if !wait(r, time.Duration(rand.Int64N(int64(s.slowMax)))+1) {
			return
		}
	}
	if !wait(r, s.delay) {
		return
	}
	if !stream {
		writeJSON(w, http.StatusOK, s.res.chat)
		done = true
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for i, ev := range events {
		if _, err := w.Write(ev); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		// Events are: 0 role, 1..N content, N+1 finish, [usage], [DONE].
		// The gap goes before each content chunk, like token generation.
		if s.chunkGap > 0 && i < s.nChunks {
			if !wait(r, s.chunkGap) {
				return
			}
		}
	}
	done = true
}

func (s *server) embeddings(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	defer bufPool.Put(body)
	if err != nil {
		return
	}
	if s.fault(w, r) {
		return
	}
	b64 := hasAny(body.Bytes(), `"encoding_format":"base64"`, `"encoding_format": "base64"`)
	if !wait(r, s.delay) {
		return
	}
	if b64 {
		writeJSON(w, http.StatusOK, s.res.embedBase64)
	} else {
		writeJSON(w, http.StatusOK, s.res.embedFloat)
	}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		s.chat(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/embeddings":
		s.embeddings(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		writeJSON(w, http.StatusOK, s.res.models)
	case s.soak != nil && strings.HasPrefix(r.URL.Path, "/_soak/"):
		s.soakControl(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/healthz":
		writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	default:
		io.Copy(io.Discard, r.Body)
		writeJSON(w, http.StatusNotFound, s.res.notFound)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	delay := flag.Duration("delay", 0, "fixed delay before answering")
	chunks := flag.Int("chunks", 20, "number of SSE content chunks")
	chunkGap := flag.Duration("chunk-gap", 0, "delay between SSE content chunks")
	failRate := flag.Float64("fail-rate", 0, "fraction of chat/embeddings requests answered with HTTP 500 (chaos runs)")
	hangRate := flag.Float64("hang-rate", 0, "fraction of chat/embeddings requests never answered until the client leaves (chaos runs)")
	resetRate := flag.Float64("reset-rate", 0, "chat: fraction reset (RST) before any answer")
	headersResetRate := flag.Float64("headers-reset-rate", 0, "chat: fraction reset right after 200 and its headers")
	cutRate := flag.Float64("cut-rate", 0, "chat: fraction reset mid-answer (streams: after the role chunk and half the content)")
	slowRate := flag.Float64("slow-rate", 0, "chat: fraction whose answer starts after a delay drawn from (0, -slow-max]")
	slowMax := flag.Duration("slow-max", 2*time.Second, "longest delay of -slow-rate answers")
	truncateRate := flag.Float64("truncate-rate", 0, "chat: fraction whose body ends early but cleanly")
	garbageRate := flag.Float64("garbage-rate", 0, "chat: fraction answered 200 with a body that is not JSON")
	soakMode := flag.Bool("soak", false, "serve /_soak/storm and /_soak/log (bench/soak.ts)")
	flag.Parse()
	if *chunks < 1 {
		log.Fatal("-chunks must be >= 1")
	}
	if *failRate < 0 || *hangRate < 0 || *failRate+*hangRate > 1 {
		log.Fatal("-fail-rate and -hang-rate must be >= 0 and add up to at most 1")
	}
	rates := []float64{*failRate, *hangRate, *resetRate, *headersResetRate, *cutRate, *slowRate, *truncateRate, *garbageRate}
	total := 0.0
	for _, x := range rates {
		if x < 0 {
			log.Fatal("fault rates must be >= 0")
		}
		total += x
	}
	if total > 1 {
		log.Fatal("fault rates must add up to at most 1")
	}
	if *slowMax <= 0 {
		log.Fatal("-slow-max must be > 0")
	}

	s := &server{res: buildResponses(*chunks), delay: *delay, chunkGap: *chunkGap, nChunks: *chunks, failRate: *failRate, hangRate: *hangRate,
		resetRate: *resetRate, headersResetRate: *headersResetRate, cutRate: *cutRate, slowRate: *slowRate, slowMax: *slowMax,
		truncateRate: *truncateRate, garbageRate: *garbageRate}
	if *soakMode {
		s.soak = &soakState{}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	fmt.Fprintf(os.Stdout, "LISTENING %d\n", ln.Addr().(*net.TCPAddr).Port)
	if err := srv.Serve(ln); err != nil {
		log.Fatal(err)
	}
}
