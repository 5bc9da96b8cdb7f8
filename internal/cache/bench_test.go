package cache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPutRestore stores a file in the cache and restores it into
// another run directory (hard links on one file system; the restore hashes
// the file to verify it), by file size.
func BenchmarkPutRestore(b *testing.B) {
	for _, mb := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			dir := b.TempDir()
			src := filepath.Join(dir, "run")
			os.MkdirAll(src, 0o755)
			data := make([]byte, mb<<20)
			rand.Read(data)
			os.WriteFile(filepath.Join(src, "windows.parquet"), data, 0o644)
			h := sha256.Sum256(data)
			f := File{Path: "windows.parquet", SHA256: hex.EncodeToString(h[:]), Size: int64(len(data))}
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s := Open(filepath.Join(dir, fmt.Sprint("cache", i)))
				k := fmt.Sprintf("%064x", i)
				e, err := s.Put(ctx, Entry{Key: k, Stage: "features", Outputs: []File{f}}, src)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Restore(ctx, e, filepath.Join(dir, fmt.Sprint("restored", i))); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
