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
	if s.fault(w, r) {
		return
	}
	stream := hasAny(b, `"stream":true`, `"stream": true`)
	withUsage := hasAny(b, `"include_usage":true`, `"include_usage": true`)
	if !wait(r, s.delay) {
		return
	}
	if !stream {
		writeJSON(w, http.StatusOK, s.res.chat)
		return
	}
	events := s.res.streamPlain
	if withUsage {
		events = s.res.streamUsage
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
	flag.Parse()
	if *chunks < 1 {
		log.Fatal("-chunks must be >= 1")
	}
	if *failRate < 0 || *hangRate < 0 || *failRate+*hangRate > 1 {
		log.Fatal("-fail-rate and -hang-rate must be >= 0 and add up to at most 1")
	}

	s := &server{res: buildResponses(*chunks), delay: *delay, chunkGap: *chunkGap, nChunks: *chunks, failRate: *failRate, hangRate: *hangRate}
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
