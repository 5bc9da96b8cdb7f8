package dataset

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// DeviceKey identifies a device: its tenant and device id.
type DeviceKey struct{ Tenant, Device string }

// Compare orders keys by tenant, then device (the order of DeviceFrames).
func (k DeviceKey) Compare(o DeviceKey) int {
	return cmp.Or(cmp.Compare(k.Tenant, o.Tenant), cmp.Compare(k.Device, o.Device))
}

// Devices lists the distinct devices of a readings or labeled file in
// (tenant, device) order, reading only the two id columns.
func (r *Reader) Devices(ctx context.Context) ([]DeviceKey, error) {
	seen := map[DeviceKey]bool{}
	var keys []DeviceKey
	var prev DeviceKey
	first := true
	for rec, err := range r.Batches(ctx, ColTenant, ColDevice) {
		if err != nil {
			return nil, err
		}
		tn, ok1 := rec.Column(0).(*array.String)
		dv, ok2 := rec.Column(1).(*array.String)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s: %s and %s must be strings", r.loc, ColTenant, ColDevice)
		}
		for i := range int(rec.NumRows()) {
			k := DeviceKey{tn.Value(i), dv.Value(i)}
			if !first && k == prev {
				continue
			}
			first, prev = false, k
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, DeviceKey.Compare)
	return keys, nil
}
