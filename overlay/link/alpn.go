package link

import (
	"reflect"

	"github.com/pion/dtls/v2"
)

// negotiatedProtocol returns the ALPN protocol of a DTLS connection. pion/dtls v2.2.12
// negotiates ALPN but its ConnectionState() copy drops the result, so it is read from the
// connection's own state (read-only reflection; "" if the field is not there).
func negotiatedProtocol(c *dtls.Conn) string {
	if p := c.ConnectionState().NegotiatedProtocol; p != "" {
		return p
	}
	v := reflect.ValueOf(c).Elem().FieldByName("state")
	if !v.IsValid() || v.Kind() != reflect.Struct {
		return ""
	}
	f := v.FieldByName("NegotiatedProtocol")
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}
