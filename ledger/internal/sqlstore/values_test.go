package sqlstore

import (
	"slices"
	"testing"
)

func TestValuesClass(t *testing.T) {
	for _, tc := range []struct{ n, cols, want int }{
		{0, 2, 0}, {1, 2, 16}, {16, 2, 16}, {17, 2, 32}, {1000, 2, 1024}, {4000, 2, 4096},
		// Within the variable limit: 30,000 / 3 = 10,000 rows.
		{9000, 3, 10000}, {10000, 3, 10000},
	} {
		if got := valuesClass(tc.n, tc.cols); got != tc.want {
			t.Errorf("valuesClass(%d, %d) = %d, want %d", tc.n, tc.cols, got, tc.want)
		}
	}
}

func TestInsertChunks(t *testing.T) {
	for _, tc := range []struct {
		n, cols int
		want    []int
	}{
		{0, 6, nil},
		{1, 6, []int{1}},
		{1000, 11, []int{512, 256, 128, 64, 32, 8}},
		{3000, 6, []int{1024, 1024, 512, 256, 128, 32, 16, 8}},
		{2049, 11, []int{1024, 1024, 1}},
		{100, 5000, []int{4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}}, // 6 rows fit: 4 at most
	} {
		got := insertChunks(tc.n, tc.cols)
		if !slices.Equal(got, tc.want) {
			t.Errorf("insertChunks(%d, %d) = %v, want %v", tc.n, tc.cols, got, tc.want)
		}
		sum := 0
		for _, c := range got {
			sum += c
			if c > maxRowsPerInsert(tc.cols) {
				t.Errorf("insertChunks(%d, %d): a statement of %d rows is past the variable limit", tc.n, tc.cols, c)
			}
		}
		if sum != tc.n {
			t.Errorf("insertChunks(%d, %d) covers %d rows", tc.n, tc.cols, sum)
		}
	}
}
