package handlers

import "testing"

func TestOriginAllowed(t *testing.T) {
	t.Parallel()
	allowed := []string{"https://app.example.com", "https://*.acme.io", "http://localhost:3000"}
	cases := map[string]bool{
		"https://app.example.com":      true,
		"HTTPS://APP.EXAMPLE.COM":      true,
		"http://app.example.com":       false,
		"https://app.example.com.evil": false,
		"https://eu.acme.io":           true,
		"https://a.b.acme.io":          true,
		"https://acme.io":              false,
		"https://evilacme.io":          false,
		"https://evil-acme.io":         false,
		"http://eu.acme.io":            false,
		"http://localhost:3000":        true,
		"http://localhost:3001":        false,
		"null":                         false,
	}
	for origin, want := range cases {
		if got := originAllowed(allowed, origin); got != want {
			t.Errorf("%q: %v, want %v", origin, got, want)
		}
	}
	if !originAllowed([]string{"*"}, "https://anything.test") {
		t.Error(`"*" must allow any origin`)
	}
}
