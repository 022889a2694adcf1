package enroll

import (
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestUsersAddedBesideARunningServer: "overlay-server user add" while "serve" runs (two
// processes, one file): the server sees the new account, and its own writes keep it.
func TestUsersAddedBesideARunningServer(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileUsers)
	server, err := OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	server.Cost = bcrypt.MinCost
	if err := server.Add("alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	cli, err := OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	cli.Cost = bcrypt.MinCost
	if err := cli.Add("carol", "carol-password"); err != nil {
		t.Fatal(err)
	}
	if err := server.Authenticate("carol", "carol-password"); err != nil {
		t.Fatalf("the server does not see the added account: %v", err)
	}
	if _, err := server.NodeIDs("alice", 1); err != nil { // the server writes the file
		t.Fatal(err)
	}
	again, err := OpenUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Exists("carol") || !again.Exists("alice") {
		t.Errorf("accounts after the server wrote: %v", again.Names())
	}
}
