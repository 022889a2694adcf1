// Package handoff passes a join link to the phone already running on a profile: a desktop opens
// a chordphone: link by starting the program again (the desktop entry's Exec=chordphone %u), and
// only one process may have a profile open. The running GUI listens on a Unix socket in the
// profile directory (mode 0600 in a 0700 directory: only the profile's owner can reach it).
package handoff

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chordphone/chordphone/overlay/enroll"
)

// SocketName is the socket's file name in the profile directory.
const SocketName = "handoff.sock"

// Listen takes links that other starts of the program hand over, until ctx ends (the socket
// file is then removed). A link that is not a join link is refused.
func Listen(ctx context.Context, profile string) (<-chan string, error) {
	path := filepath.Join(profile, SocketName)
	_ = os.Remove(path) // left by a phone that crashed; the profile's lock says it is not running
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening for links handed over: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	links := make(chan string, 4)
	go func() { // owner: Listen's caller through ctx; closes the socket when ctx ends
		<-ctx.Done()
		_ = ln.Close()
	}()
	go func() { // owner: the listener; ends when it is closed
		defer close(links)
		defer os.Remove(path)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(ctx, c, links)
		}
	}()
	return links, nil
}

func serve(ctx context.Context, c net.Conn, links chan<- string) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	link := strings.TrimSpace(line)
	if _, err := enroll.ParseInvitation(link); err != nil {
		fmt.Fprintf(c, "refused: %v\n", err)
		return
	}
	select {
	case links <- link:
		fmt.Fprintln(c, "ok")
	case <-ctx.Done():
	}
}

// Send hands link to the phone running on profile.
func Send(profile, link string) error {
	c, err := net.DialTimeout("unix", filepath.Join(profile, SocketName), 5*time.Second)
	if err != nil {
		return fmt.Errorf("the running phone does not take links: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, link); err != nil {
		return err
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("the running phone did not answer: %w", err)
	}
	if answer = strings.TrimSpace(answer); answer != "ok" {
		return errors.New(answer)
	}
	return nil
}
