package edge

import "crypto/rand"

// EpochLen is the length of an epoch: four base62 characters, so it fits in a
// short cursor, with 14.7 million values, so that a topic recreated after a
// Redis wipe is told apart from its old self with near certainty.
const EpochLen = 4

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewEpoch returns a random epoch. Brokers call it when a topic's state is
// created; Redis gets it as an argument because randomness inside a Lua
// script is not reliably random.
func NewEpoch() string {
	var b [EpochLen]byte
	rand.Read(b[:]) // never fails (crypto/rand documents so since Go 1.24)
	for i := range b {
		b[i] = base62[int(b[i])%len(base62)]
	}
	return string(b[:])
}

// ValidEpoch reports whether s has the form NewEpoch returns.
func ValidEpoch(s string) bool {
	if len(s) != EpochLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if base62Value(s[i]) < 0 {
			return false
		}
	}
	return true
}

func base62Value(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 36
	}
	return -1
}
