package promql

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/tideops/tide/loadsource"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// fakeAPI answers queries with a fixed result and records what it was asked.
type fakeAPI struct {
	value    model.Value
	err      error
	deadline time.Duration // time left on the context, seen by the last call
	ranges   []v1.Range
	// rangeValue builds a range result for a requested range.
	rangeValue func(v1.Range) model.Value
}

func (f *fakeAPI) Query(ctx context.Context, _ string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
	return f.value, nil, nil, f.err
}

func (f *fakeAPI) QueryRange(ctx context.Context, _ string, r v1.Range, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	f.ranges = append(f.ranges, r)
	if f.err != nil {
		return nil, nil, nil, f.err
	}
	if f.rangeValue != nil {
		return f.rangeValue(r), nil, nil, nil
	}
	return f.value, nil, nil, nil
}

func vec(values ...float64) model.Vector {
	var v model.Vector
	for i, x := range values {
		v = append(v, &model.Sample{Metric: model.Metric{"i": model.LabelValue(rune('a' + i))}, Value: model.SampleValue(x), Timestamp: model.TimeFromUnixNano(t0.UnixNano())})
	}
	return v
}

func TestLatestResults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		value   model.Value
		err     error
		want    float64
		noData  string // the reason, when the load is missing
		errType v1.ErrorType
	}{
		{name: "one series", value: vec(42.5), want: 42.5},
		{name: "zero is a value", value: vec(0), want: 0},
		{name: "scalar", value: &model.Scalar{Value: 7, Timestamp: model.TimeFromUnixNano(t0.UnixNano())}, want: 7},
		{name: "no series", value: vec(), noData: "no series"},
		{name: "several series", value: vec(1, 2), noData: "2 series"},
		{name: "NaN", value: vec(math.NaN()), noData: "not a load"},
		{name: "infinite", value: vec(math.Inf(1)), noData: "not a load"},
		{name: "negative", value: vec(-3), noData: "not a load"},
		{name: "matrix", value: model.Matrix{}, noData: "matrix"},
		{name: "string", value: &model.String{Value: "x"}, noData: "string"},
		{name: "nil", value: nil, noData: "nothing"},
		{name: "server error", err: &v1.Error{Type: v1.ErrBadData, Msg: "parse error"}, noData: "parse error", errType: v1.ErrBadData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{value: tc.value, err: tc.err}
			s, err := newSource(f, "load", Options{Timeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Latest(context.Background(), t0)
			if tc.noData != "" {
				if !errors.Is(err, loadsource.ErrNoData) || !strings.Contains(err.Error(), tc.noData) {
					t.Fatalf("got %+v, %v; want ErrNoData about %q", got, err, tc.noData)
				}
				var apiErr *v1.Error
				if tc.errType != "" && (!errors.As(err, &apiErr) || apiErr.Type != tc.errType) {
					t.Fatalf("cause lost: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Value != tc.want || !got.At.Equal(t0) {
				t.Fatalf("got %+v, want %g at the result's time %s", got, tc.want, t0)
			}
			if f.deadline <= 0 || f.deadline > 3*time.Second {
				t.Fatalf("query context has %s left, want a deadline within the 3s timeout", f.deadline)
			}
		})
	}
}

func TestRangeChunksAndFilters(t *testing.T) {
	step := time.Minute
	f := &fakeAPI{rangeValue: func(r v1.Range) model.Value {
		var pts []model.SamplePair
		for at := r.Start; !at.After(r.End); at = at.Add(r.Step) {
			v := float64(at.Sub(t0) / time.Minute)
			if int(v)%1000 == 999 {
				v = math.NaN() // left out
			}
			pts = append(pts, model.SamplePair{Timestamp: model.TimeFromUnixNano(at.UnixNano()), Value: model.SampleValue(v)})
		}
		return model.Matrix{{Metric: model.Metric{}, Values: pts}}
	}}
	s, _ := newSource(f, "load", Options{})
	to := t0.Add(25000 * step) // 25001 instants: three queries
	got, err := s.Range(context.Background(), t0, to, step)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.ranges) != 3 {
		t.Fatalf("%d range queries, want 3 of at most %d points: %+v", len(f.ranges), maxPoints, f.ranges)
	}
	if !f.ranges[1].Start.Equal(t0.Add(maxPoints*step)) || !f.ranges[2].End.Equal(to) {
		t.Fatalf("chunks do not tile the range: %+v", f.ranges)
	}
	if want := 25001 - 25; len(got) != want {
		t.Fatalf("%d samples, want %d (the 25 NaNs left out)", len(got), want)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].At.After(got[i-1].At) {
			t.Fatalf("samples out of order or repeated at %d: %v then %v", i, got[i-1].At, got[i].At)
		}
	}
	for name, v := range map[string]model.Value{
		"no series":      model.Matrix{},
		"several series": model.Matrix{{Metric: model.Metric{"a": "1"}}, {Metric: model.Metric{"a": "2"}}},
		"a vector":       vec(1),
	} {
		s, _ := newSource(&fakeAPI{value: v}, "load", Options{})
		if _, err := s.Range(context.Background(), t0, t0.Add(time.Hour), step); !errors.Is(err, loadsource.ErrNoData) {
			t.Errorf("%s: %v, want ErrNoData", name, err)
		}
	}
	if _, err := s.Range(context.Background(), t0, t0.Add(-time.Hour), step); err == nil {
		t.Error("reversed range accepted")
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := newSource(&fakeAPI{}, "", Options{}); err == nil {
		t.Error("empty query accepted")
	}
	if _, err := New(nil, "up", Options{}); err == nil {
		t.Error("nil client accepted")
	}
}
