package features

import (
	"fmt"
	"math"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
)

// Split methods.
const (
	SplitDevice = "device"
	SplitRandom = "random"
	SplitTime   = "time"
)

// split codes stored per window while planning.
const (
	codeNone uint8 = iota // not assigned (e.g. dropped)
	codeTrain
	codeVal
	codeTest
)

var splitNames = [...]string{codeNone: "", codeTrain: dataset.SplitTrain, codeVal: dataset.SplitVal, codeTest: dataset.SplitTest}

// SplitSpec is what the windows file records about its split (metadata
// modax.split): enough to reproduce it and to know whether it leaks.
type SplitSpec struct {
	Method     string           `json:"method"`
	Seed       int64            `json:"seed"`
	TestSize   float64          `json:"test_size,omitempty"`
	ValSize    float64          `json:"val_size,omitempty"`
	Cutoff     string           `json:"cutoff,omitempty"`
	ValCutoff  string           `json:"val_cutoff,omitempty"`
	TestSource string           `json:"test_source,omitempty"`
	Leaky      bool             `json:"leaky"`
	Note       string           `json:"note,omitempty"`
	Windows    map[string]int64 `json:"windows"`
	Devices    map[string]int   `json:"devices"`
}

// mt19937 is the Mersenne Twister exactly as numpy's legacy RandomState uses
// it (seeded with init_genrand, 32-bit draws), so that permutations match
// numpy's bit for bit.
type mt19937 struct {
	state [624]uint32
	pos   int
}

func newMT19937(seed uint32) *mt19937 {
	m := &mt19937{}
	m.state[0] = seed
	for i := 1; i < 624; i++ {
		prev := m.state[i-1]
		m.state[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	m.pos = 624
	return m
}

func (m *mt19937) next32() uint32 {
	if m.pos >= 624 {
		const upper, lower = 0x80000000, 0x7fffffff
		for i := range 624 {
			y := (m.state[i] & upper) | (m.state[(i+1)%624] & lower)
			v := m.state[(i+397)%624] ^ (y >> 1)
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			m.state[i] = v
		}
		m.pos = 0
	}
	y := m.state[m.pos]
	m.pos++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// interval returns a uniform value in [0, max] as numpy's legacy
// random_interval does (masked rejection sampling).
func (m *mt19937) interval(max uint32) uint32 {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		if v := m.next32() & mask; v <= max {
			return v
		}
	}
}

// numpyPermutation returns numpy.random.RandomState(seed).permutation(n).
func numpyPermutation(n int, seed uint32) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	m := newMT19937(seed)
	for i := n - 1; i >= 1; i-- {
		j := m.interval(uint32(i))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// trainTestSplit returns the indices scikit-learn's
// train_test_split(range(n), test_size=testSize, random_state=seed) puts in
// train and in test, in the order it returns them: n_test = ceil(testSize·n),
// the first n_test of RandomState(seed).permutation(n) are the test set and
// the rest the train set.
func trainTestSplit(n int, testSize float64, seed uint32) (train, test []int32) {
	nTest := int(math.Ceil(testSize * float64(n)))
	if testSize <= 0 {
		nTest = 0
	}
	if nTest == 0 {
		train = make([]int32, n)
		for i := range train {
			train[i] = int32(i)
		}
		return train, nil
	}
	p := numpyPermutation(n, seed)
	return p[nTest:], p[:nTest]
}

// assignSplits assigns n items (devices or windows, in file order) to train,
// val and test the way the design does: train_test_split(test_size, seed),
// then train_test_split of the remaining train part with val_size and the
// same seed. codes[i] is the split code of item i.
func assignSplits(n int, testSize, valSize float64, seed int64) ([]uint8, error) {
	codes := make([]uint8, n)
	if n == 0 {
		return codes, nil
	}
	s, err := numpySeed(seed)
	if err != nil {
		return nil, err
	}
	rest, test := trainTestSplit(n, testSize, s)
	for _, i := range test {
		codes[i] = codeTest
	}
	train, val := trainTestSplit(len(rest), valSize, s)
	for _, i := range val {
		codes[rest[i]] = codeVal
	}
	for _, i := range train {
		codes[rest[i]] = codeTrain
	}
	if len(train) == 0 {
		return nil, fmt.Errorf("split of %d items with test size %g and val size %g leaves no training item", n, testSize, valSize)
	}
	return codes, nil
}

// numpySeed checks that seed is a valid numpy RandomState seed.
func numpySeed(seed int64) (uint32, error) {
	if seed < 0 || seed > math.MaxUint32 {
		return 0, fmt.Errorf("seed %d: want 0 ≤ seed < 2^32 (numpy's RandomState range)", seed)
	}
	return uint32(seed), nil
}

// parseTime accepts RFC 3339 times and dates (UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q (want RFC 3339, e.g. 2024-05-01T00:00:00Z, or a date 2024-05-01)", s)
}
