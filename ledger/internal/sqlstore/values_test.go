package sqlstore

import "testing"

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
