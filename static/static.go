// Package static holds the files Edge serves to browsers, embedded in the
// binary so that one file is all a deployment needs.
package static

import "embed"

// Files is the demo page and its assets.
//
//go:embed index.html
var Files embed.FS
