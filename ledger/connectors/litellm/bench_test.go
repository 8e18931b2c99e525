package litellm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// BenchmarkDecode decodes an ndjson batch of 500 copies of the example's first object (about
// 3.5 KB each, as LiteLLM sends them); MB/s is of the body.
func BenchmarkDecode(b *testing.B) {
	var objs []map[string]any
	if err := json.Unmarshal(example(b, "litellm-generic-api-json-array.json"), &objs); err != nil {
		b.Fatal(err)
	}
	var body bytes.Buffer
	for i := range 500 {
		objs[0]["id"] = fmt.Sprintf("c-%d", i)
		line, _ := json.Marshal(objs[0])
		body.Write(line)
		body.WriteByte('\n')
	}
	for _, path := range []struct {
		name string
		fn   func([]byte) ([]byte, int)
	}{
		{"fast", func(bb []byte) ([]byte, int) { u, _ := decodeFast(bb); return nil, len(u) }},
		{"encoding-json", func(bb []byte) ([]byte, int) { u, _ := decodeSlow(bb); return nil, len(u) }},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.SetBytes(int64(body.Len()))
			for b.Loop() {
				if _, n := path.fn(body.Bytes()); n != 500 {
					b.Fatalf("%d events", n)
				}
			}
		})
	}
}
