package redact

import "testing"

func TestURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://static.crates.io/crates/serde/1.0.0/download", "https://static.crates.io/crates/serde/1.0.0/download"},
		{"https://tok@r.example/x", "https://REDACTED@r.example/x"},
		{"https://u:p@r.example/x?a=1&sig=zz", "https://REDACTED@r.example/x?a=REDACTED&sig=REDACTED"},
		{"file:///m/x.crate", "file:///m/x.crate"},
		{"://bad", "<unparsable URL>"},
		// git URLs
		{"https://ghp_SECRET@github.com/o/r.git", "https://REDACTED@github.com/o/r.git"},
		{"ssh://git@github.com/o/r.git", "ssh://REDACTED@github.com/o/r.git"},
		{"git@github.com:o/r.git", "REDACTED@github.com:o/r.git"},
		{"tok:pw@github.com:o/r.git", "REDACTED@github.com:o/r.git"},
		{"github.com:o/r.git", "github.com:o/r.git"},
		{"/srv/git/r.git", "/srv/git/r.git"},
	}
	for _, tt := range tests {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain words", "plain words"},
		{"GET https://static.crates.io/crates/a/1/download: 404", "GET https://static.crates.io/crates/a/1/download: 404"},
		{"fatal: unable to access 'https://ghp_SECRET@github.com/o/r.git/': 403", "fatal: unable to access 'https://REDACTED@github.com/o/r.git/': 403"},
		{"[ERR] GET https://r.example/x?token=abc request failed", "[ERR] GET https://r.example/x?token=REDACTED request failed"},
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
