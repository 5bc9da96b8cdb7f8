package dataset

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// poisonAllocator overwrites memory when it is freed, so that anything still
// pointing into a released batch reads garbage.
type poisonAllocator struct{ memory.Allocator }

func (p poisonAllocator) Free(b []byte) {
	for i := range b {
		b[i] = 'X'
	}
	p.Allocator.Free(b)
}

// TestFramesOwnTheirStrings: array.String.Value is a view into the batch's
// buffer. Frames (and the reader's bookkeeping) must copy the names, or they
// read released memory — and with the Go allocator they pin every batch.
func TestFramesOwnTheirStrings(t *testing.T) {
	dir := t.TempDir()
	loc := filepath.Join(dir, "readings.parquet")
	w, err := CreateFrames(loc, []string{"s"}, false, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"dev-a", "dev-b", "dev-c"}
	for _, d := range names {
		f := NewFrame("tenant", d, 1, false)
		for i := range 10 {
			f.Time = append(f.Time, int64(i))
			f.Sensors[0] = append(f.Sensors[0], float64(i))
		}
		if err := w.Append(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	failures := filepath.Join(dir, "failures.parquet")
	if err := WriteFailures(failures, []Failure{{Tenant: "tenant", Device: "dev-b", Time: 5, EventType: "failure", Component: "bearing", OpHours: math.NaN()}}, Meta{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(loc, KindReadings, WithReadAllocator(poisonAllocator{memory.NewGoAllocator()}), WithBatchRows(4))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var frames []*Frame
	for f, err := range r.DeviceFrames(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	if len(frames) != 3 {
		t.Fatalf("%d frames", len(frames))
	}
	for i, f := range frames {
		if f.Tenant != "tenant" || f.Device != names[i] {
			t.Fatalf("frame %d names %q/%q after its batches were released", i, f.Tenant, f.Device)
		}
	}
	fs, _, err := ReadFailures(context.Background(), failures)
	if err != nil {
		t.Fatal(err)
	}
	if fs[0].Device != "dev-b" || fs[0].Component != "bearing" || fs[0].EventType != "failure" {
		t.Fatalf("failure %+v", fs[0])
	}
}
