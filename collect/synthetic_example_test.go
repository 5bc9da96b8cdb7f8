package collect_test

import (
	"context"
	"fmt"

	"github.com/modax/modax-ml/collect"
)

// Other packages' tests generate a small fleet in memory.
func ExampleSynthetic() {
	opts := collect.DefaultSyntheticOptions()
	opts.Devices, opts.Days = 2, 30
	frames, failures, err := collect.Synthetic(context.Background(), opts)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(frames), frames[0].Device, collect.SyntheticSensors)
	fmt.Println(len(failures) > 0, failures[0].EventType)
	// Output:
	// 2 dev-001 [current_mean vibration_x_mean vibration_y_mean vibration_z_mean temperature_mean]
	// true failure
}
