package fetch

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/cargohash/cargohash/internal/redact"
)

// Download writes the file at rawURL (http(s):// or file://) to dst, which
// it creates or truncates, and returns its size. Unlike Crate, nothing
// verifies the bytes (a source archive has no checksum to check against)
// and nothing is cached; transient failures are retried as for crates, and
// a body larger than limit bytes (Options.MaxSize, default 1 GiB, when
// limit ≤ 0) fails.
func (f *Fetcher) Download(ctx context.Context, rawURL, dst string, limit int64) (int64, error) {
	if limit <= 0 {
		limit = f.opts.MaxSize
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrSource, redact.URL(rawURL), err)
	}
	copyTo := func(r io.Reader) (int64, error) {
		out, err := os.Create(dst)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(out, io.LimitReader(r, limit+1))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil && n > limit {
			err = fmt.Errorf("%s: larger than %d bytes", redact.Parsed(u), limit)
		}
		return n, err
	}
	switch u.Scheme {
	case "file":
		file, err := os.Open(u.Path)
		if err != nil {
			return 0, &NetError{Op: "open", URL: redact.Parsed(u), Err: unwrapPathError(err)}
		}
		defer file.Close()
		return copyTo(&ctxReader{ctx: ctx, r: file, op: "read", url: redact.Parsed(u)})
	case "http", "https":
		if f.opts.Offline {
			return 0, fmt.Errorf("GET %s: %w", redact.Parsed(u), ErrOffline)
		}
		var size int64
		err := f.get(ctx, rawURL, func(b *httpBody) error {
			n, err := copyTo(b)
			size = n
			return err
		})
		return size, err
	}
	return 0, fmt.Errorf("%w: %s: scheme %q (want http, https or file)", ErrSource, redact.Parsed(u), u.Scheme)
}
