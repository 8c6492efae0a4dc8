package s3

import (
	"testing"
)

func TestPartSize(t *testing.T) {
	const (
		MiB = int64(1) << 20
		GiB = int64(1) << 30
		TiB = int64(1) << 40
	)
	tests := []struct {
		name       string
		size, want int64
		wantPart   int64 // 0: grown, only the limits are checked
		wantErr    bool
	}{
		{"one byte", 1, 16 * MiB, 16 * MiB, false},
		{"below the minimum asked", 12 * MiB, 1 * MiB, 5 * MiB, false},
		{"5 GiB", 5 * GiB, 16 * MiB, 16 * MiB, false},
		{"exactly 10,000 parts", 10_000 * 16 * MiB, 16 * MiB, 16 * MiB, false},
		{"one byte more than 10,000 parts", 10_000*16*MiB + 1, 16 * MiB, 17 * MiB, false},
		{"10,000 parts of 5 MiB and a byte", 10_000*5*MiB + 1, 5 * MiB, 6 * MiB, false},
		{"1 TiB", 1 * TiB, 16 * MiB, 0, false},
		{"3 TiB with 5 MiB asked", 3 * TiB, 5 * MiB, 0, false},
		{"5 TiB", 5 * TiB, 16 * MiB, 0, false},
		{"5 TiB with 1 GiB asked", 5 * TiB, 1 * GiB, 1 * GiB, false},
		{"over 5 TiB", 5*TiB + 1, 16 * MiB, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := partSize(tt.size, tt.want)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("partSize(%d, %d) = %d, want an error", tt.size, tt.want, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantPart != 0 && got != tt.wantPart {
				t.Errorf("partSize(%d, %d) = %d, want %d", tt.size, tt.want, got, tt.wantPart)
			}
			parts := (tt.size + got - 1) / got
			if parts > maxParts {
				t.Errorf("partSize(%d, %d) = %d: %d parts, S3 takes at most %d", tt.size, tt.want, got, parts, maxParts)
			}
			if got < minPartSize || got > maxPartSize {
				t.Errorf("partSize(%d, %d) = %d: outside S3's [5 MiB, 5 GiB]", tt.size, tt.want, got)
			}
			if got%MiB != 0 {
				t.Errorf("partSize(%d, %d) = %d: not a whole number of MiB", tt.size, tt.want, got)
			}
		})
	}
}

func TestMultipartOptions(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		want    multipart
		wantErr bool
	}{
		{"defaults", Options{}, multipart{DefaultMultipartThreshold, DefaultPartSize, DefaultPartConcurrency}, false},
		{"set", Options{MultipartThreshold: 6 << 20, PartSize: 5 << 20, PartConcurrency: 2}, multipart{6 << 20, 5 << 20, 2}, false},
		{"part below 5 MiB", Options{PartSize: 5<<20 - 1}, multipart{}, true},
		{"part above 5 GiB", Options{PartSize: 5<<30 + 1}, multipart{}, true},
		{"threshold above 5 GiB", Options{MultipartThreshold: 5<<30 + 1}, multipart{}, true},
		{"negative threshold", Options{MultipartThreshold: -1}, multipart{}, true},
		{"negative concurrency", Options{PartConcurrency: -1}, multipart{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := multipartOf(tt.o)
			if (err != nil) != tt.wantErr {
				t.Fatalf("multipartOf: %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("multipartOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
