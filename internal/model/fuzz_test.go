package model

import (
	"bytes"
	"testing"
)

// FuzzDecodeSafetensors feeds arbitrary bytes to the checkpoint parser: it
// must never panic, and whatever it accepts must survive a round trip.
func FuzzDecodeSafetensors(f *testing.F) {
	var buf bytes.Buffer
	p, err := NewParams(Arch{Type: TypeLSTM, InputSize: 2, Hidden: 2, Layers: 1, FC: 2})
	if err != nil {
		f.Fatal(err)
	}
	p.Init(1)
	if err := EncodeSafetensors(&buf, p.Tensors, map[string]string{"k": "v"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte("\x08\x00\x00\x00\x00\x00\x00\x00{}      "))
	f.Add([]byte("\x30\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\x00\x00\x80\x3f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, meta, err := DecodeSafetensors(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := EncodeSafetensors(&out, ts, meta); err != nil {
			t.Fatalf("re-encode of an accepted file: %v", err)
		}
		ts2, meta2, err := DecodeSafetensors(out.Bytes())
		if err != nil {
			t.Fatalf("decode of our own encoding: %v", err)
		}
		delete(meta, MetaWeightsSHA256)
		delete(meta2, MetaWeightsSHA256)
		if len(ts2) != len(ts) || len(meta2) != len(meta) {
			t.Fatalf("round trip changed the file: %d/%d tensors, %d/%d metadata", len(ts2), len(ts), len(meta2), len(meta))
		}
		for i := range ts {
			if ts[i].Name != ts2[i].Name || len(ts[i].Data) != len(ts2[i].Data) {
				t.Fatalf("tensor %d changed in the round trip", i)
			}
			for j := range ts[i].Data {
				a, b := ts[i].Data[j], ts2[i].Data[j]
				if a != b && (a == a || b == b) { // NaN payloads may differ only as NaN
					t.Fatalf("%s[%d]: %v != %v", ts[i].Name, j, a, b)
				}
			}
		}
	})
}
