package ui

import "testing"

func TestTrayItemListed(t *testing.T) {
	ids := []string{":1.7", "org.kde.StatusNotifierItem-42-1"}
	for _, c := range []struct {
		items []string
		want  bool
	}{
		{nil, false},
		{[]string{":1.7/StatusNotifierItem"}, true},           // KDE, GNOME: sender and path
		{[]string{"org.kde.StatusNotifierItem-42-1"}, true},   // by well-known name
		{[]string{":1.70/StatusNotifierItem"}, false},         // another connection
		{[]string{":1.8/StatusNotifierItem", ":1.7/x"}, true}, // among others
		{[]string{"/StatusNotifierItem"}, false},              // whose? not provably ours
		{[]string{"org.kde.StatusNotifierItem-421-1"}, false}, // another process
	} {
		if got := itemListed(c.items, ids); got != c.want {
			t.Errorf("itemListed(%q) = %v, want %v", c.items, got, c.want)
		}
	}
}
