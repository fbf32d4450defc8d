//go:build !unix

package activities

import "errors"

func mkfifo(string) error { return errors.ErrUnsupported }
