package sip

import (
	"testing"
	"time"
)

func TestParseTrunk(t *testing.T) {
	tests := []struct {
		in      string
		want    Trunk
		wantErr bool
	}{
		{in: "carrier=sip:u:p@sip.example:5080", want: Trunk{Name: "carrier", User: "u", Password: "p", Host: "sip.example", Port: 5080}},
		{in: "pbx=sip:10.0.0.2", want: Trunk{Name: "pbx", Host: "10.0.0.2", Port: 5060}},
		{in: "pbx=sip:10.0.0.2:5070;transport=tcp", want: Trunk{Name: "pbx", Host: "10.0.0.2", Port: 5070, TCP: true}},
		{in: "carrier=sip:u:p@10.0.0.2;register", want: Trunk{Name: "carrier", User: "u", Password: "p", Host: "10.0.0.2", Port: 5060, Register: DefaultRegister}},
		{in: "carrier=sip:u:p@10.0.0.2;transport=tcp;register=600", want: Trunk{Name: "carrier", User: "u", Password: "p", Host: "10.0.0.2", Port: 5060, TCP: true, Register: 600 * time.Second}},
		{in: "carrier=sip:10.0.0.2;register=soon", wantErr: true},
		{in: "carrier=sip:10.0.0.2;register=0", wantErr: true},
		{in: "carrier", wantErr: true},
		{in: "=sip:10.0.0.2", wantErr: true},
		{in: "carrier=http://x", wantErr: true},
		{in: "carrier=sip:u@10.0.0.2", wantErr: true}, // a user without a password
		{in: "carrier=sip:10.0.0.2;transport=sctp", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTrunk(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseTrunk(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if s := (Trunk{Name: "c", User: "u", Password: "secret", Host: "h", Port: 1}).String(); s != "c=sip:u@h:1" {
		t.Errorf("String() = %q, want the trunk without its password", s)
	}
}

func TestNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"+14255550123", "+14255550123", true},
		{"14255550123", "+14255550123", true},
		{"+1-425-555-0123", "+14255550123", true},
		{"+14255550123;npdi;rn=+1425", "+14255550123", true},
		{"anonymous", "", false},
		{"+0425", "", false},
		{"", "", false},
		{"1+2", "", false},
	}
	for _, tt := range tests {
		if got, ok := e164(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("e164(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	addrs := []struct {
		in, number, name string
		ok               bool
	}{
		{`"Customer" <sip:+14255550123@carrier.example;user=phone>`, "+14255550123", "Customer", true},
		{`<tel:+1-425-555-0123;npdi>`, "+14255550123", "", true},
		{`sip:14255550123@10.0.0.1`, "+14255550123", "", true},
		{`"Anonymous" <sip:anonymous@anonymous.invalid>`, "", "", false},
	}
	for _, tt := range addrs {
		n, name, ok := addressNumber(tt.in)
		if n != tt.number || ok != tt.ok || (ok && name != tt.name) {
			t.Errorf("addressNumber(%q) = %q, %q, %v; want %q, %q, %v", tt.in, n, name, ok, tt.number, tt.name, tt.ok)
		}
	}
}
