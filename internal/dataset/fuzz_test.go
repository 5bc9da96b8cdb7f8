package dataset

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzFramesRoundTrip writes frames built from arbitrary bytes (any float64
// bit pattern, nulls, device names with any characters, several devices and
// batch boundaries) and reads them back: every value must come back, and no
// allocation may leak.
func FuzzFramesRoundTrip(f *testing.F) {
	f.Add([]byte("dev-a"), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf8, 0x7f}, uint8(3))
	f.Add([]byte("x'; DROP TABLE sensor_data; --"), []byte{1, 2, 3}, uint8(1))
	f.Add([]byte{}, []byte{}, uint8(0))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, name, values []byte, batch uint8) {
		alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer alloc.AssertSize(t, 0)
		var want []*Frame
		for d := range 2 {
			fr := NewFrame("tenant", string(name)+string(rune('a'+d)), 2, true)
			for i := 0; i+8 <= len(values); i += 8 {
				v := math.Float64frombits(binary.LittleEndian.Uint64(values[i:]))
				fr.Time = append(fr.Time, int64(i))
				fr.Sensors[0] = append(fr.Sensors[0], v)
				fr.Sensors[1] = append(fr.Sensors[1], -v)
				fr.RUL = append(fr.RUL, float64(i))
				fr.RULRaw = append(fr.RULRaw, v)
				fr.Health = append(fr.Health, Health(i%3))
				fr.Censored = append(fr.Censored, i%2 == 0)
				fr.LifeID = append(fr.LifeID, int32(i))
			}
			want = append(want, fr)
		}
		loc := filepath.Join(dir, "fuzz.parquet")
		w, err := CreateFrames(loc, []string{"s1", "s2"}, true, Meta{}, WithAllocator(alloc))
		if err != nil {
			t.Fatal(err)
		}
		if batch > 0 {
			w.batch = int(batch)
		}
		for _, fr := range want {
			if err := w.Append(fr); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		r, err := Open(loc, KindLabeled, WithReadAllocator(alloc), WithBatchRows(int64(batch)+1))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		i := 0
		for fr, err := range r.DeviceFrames(context.Background(), nil) {
			if err != nil {
				t.Fatal(err)
			}
			for i < len(want) && want[i].Len() == 0 {
				i++ // empty devices write no rows
			}
			compareFrames(t, fr, want[i])
			i++
		}
	})
}
