package netns

import (
	"fmt"
	"net/netip"
	"sync"
)

// Allocator hands out addresses from a range, never the range's first (network) or last
// (broadcast) address nor any reserved one. It is safe for concurrent use.
type Allocator struct {
	mu       sync.Mutex
	prefix   netip.Prefix
	reserved map[netip.Addr]bool
	byOwner  map[string]netip.Addr
	used     map[netip.Addr]string
	next     netip.Addr
}

// NewAllocator returns an allocator over an IPv4 prefix of at most /30.
func NewAllocator(prefix netip.Prefix, reserved ...netip.Addr) (*Allocator, error) {
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() || prefix.Bits() > 30 {
		return nil, fmt.Errorf("pod range %s: need an IPv4 prefix of /30 or larger", prefix)
	}
	a := &Allocator{
		prefix:   prefix,
		reserved: map[netip.Addr]bool{},
		byOwner:  map[string]netip.Addr{},
		used:     map[netip.Addr]string{},
		next:     prefix.Addr().Next(),
	}
	for _, r := range reserved {
		a.reserved[r] = true
	}
	return a, nil
}

// Allocate returns owner's address, allocating one the first time. Addresses are handed out
// round-robin so a released address is not reused at once.
func (a *Allocator) Allocate(owner string) (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byOwner[owner]; ok {
		return ip, nil
	}
	size := 1 << (32 - a.prefix.Bits())
	for range size {
		ip := a.next
		a.next = a.next.Next()
		if !a.prefix.Contains(a.next) {
			a.next = a.prefix.Addr()
		}
		if !a.usable(ip) {
			continue
		}
		a.byOwner[owner] = ip
		a.used[ip] = owner
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("pod range %s is exhausted", a.prefix)
}

// Release frees owner's address, if it has one.
func (a *Allocator) Release(owner string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip, ok := a.byOwner[owner]; ok {
		delete(a.byOwner, owner)
		delete(a.used, ip)
	}
}

func (a *Allocator) usable(ip netip.Addr) bool {
	if !a.prefix.Contains(ip) || ip == a.prefix.Addr() || a.reserved[ip] {
		return false
	}
	if _, taken := a.used[ip]; taken {
		return false
	}
	return ip != lastAddr(a.prefix)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
