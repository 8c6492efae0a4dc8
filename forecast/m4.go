package forecast

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Series is one named series of equally spaced values without timestamps,
// as in the M4 competition files.
type Series struct {
	ID     string
	Values []float64
}

// ReadM4 reads an M4-layout CSV: a header row, then one row per series whose
// first column is the id and whose other columns are the values. Cells may be
// empty at the end of a row (series are padded to the longest one); an empty
// cell followed by a value is an error.
func ReadM4(r io.Reader) ([]Series, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("reading m4 header: empty file")
		}
		return nil, fmt.Errorf("reading m4 header: %w", err)
	}
	var out []Series
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading m4 row %d: %w", len(out)+2, err)
		}
		if len(rec) == 0 || strings.TrimSpace(rec[0]) == "" {
			return nil, fmt.Errorf("reading m4 row %d: empty id", len(out)+2)
		}
		s := Series{ID: strings.TrimSpace(rec[0]), Values: make([]float64, 0, len(rec)-1)}
		ended := false
		for j, cell := range rec[1:] {
			cell = strings.TrimSpace(cell)
			if cell == "" || cell == "NA" {
				ended = true
				continue
			}
			if ended {
				return nil, fmt.Errorf("reading m4 series %s: value after an empty cell in column %d", s.ID, j+2)
			}
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil {
				return nil, fmt.Errorf("reading m4 series %s column %d: %w", s.ID, j+2, err)
			}
			s.Values = append(s.Values, v)
		}
		out = append(out, s)
	}
}

// WriteM4 writes forecasts in the layout of the M4 submissions: a header
// "id,F1,...,Fh" and one row per series. All forecasts must have length h.
func WriteM4(w io.Writer, ids []string, forecasts [][]float64, h int) error {
	if len(ids) != len(forecasts) {
		return fmt.Errorf("writing m4: %d ids for %d forecasts", len(ids), len(forecasts))
	}
	cw := csv.NewWriter(w)
	rec := make([]string, h+1)
	rec[0] = "id"
	for j := 1; j <= h; j++ {
		rec[j] = "F" + strconv.Itoa(j)
	}
	if err := cw.Write(rec); err != nil {
		return fmt.Errorf("writing m4 header: %w", err)
	}
	for i, f := range forecasts {
		if len(f) != h {
			return fmt.Errorf("writing m4 series %s: %d values, want %d", ids[i], len(f), h)
		}
		rec[0] = ids[i]
		for j, v := range f {
			rec[j+1] = strconv.FormatFloat(v, 'f', -1, 64)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("writing m4 series %s: %w", ids[i], err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing m4: %w", err)
	}
	return nil
}
