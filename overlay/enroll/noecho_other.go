//go:build !linux

package enroll

import "os"

func noEcho(*os.File) (restore func(), ok bool) { return func() {}, false }
