package wire

import (
	"context"
	"encoding/json"
	"fmt"
)

// Result is a whole response collected by Call.
type Result struct {
	Accept Accept
	Head   Head
	Body   []byte
}

// ErrRejected is returned by Call when the replica rejected the call.
type ErrRejected struct{ Ongoing int }

func (e *ErrRejected) Error() string {
	return fmt.Sprintf("replica rejected the call (%d ongoing)", e.Ongoing)
}

// Call sends a whole call on s and collects the whole answer; an ERROR frame
// comes back as *Error. It closes s.
func Call(ctx context.Context, s Stream, meta Meta, body []byte) (*Result, error) {
	defer s.Close()
	frames := []Out{{Type: TypeOpen, Payload: EncodeMeta(&meta)}}
	if len(body) > 0 {
		frames = append(frames, Out{Type: TypeData, Payload: body})
	}
	frames = append(frames, Out{Type: TypeEnd})
	if err := s.Send(frames...); err != nil {
		return nil, err
	}
	var res Result
	for {
		f, err := s.Recv(ctx)
		if err != nil {
			if ctx.Err() != nil {
				_ = s.Send(Out{Type: TypeCancel})
			}
			return nil, err
		}
		switch f.Type {
		case TypeAccept:
			res.Accept = DecodeAccept(f.Payload)
			if !res.Accept.Accepted {
				return nil, &ErrRejected{Ongoing: res.Accept.Ongoing}
			}
		case TypeHead:
			h, err := DecodeHead(f.Payload)
			if err != nil {
				return nil, fmt.Errorf("malformed HEAD: %w", err)
			}
			res.Head = h
		case TypeData:
			res.Body = append(res.Body, f.Payload...)
		case TypeEnd:
			return &res, nil
		case TypeError:
			e := &Error{}
			if err := json.Unmarshal(f.Payload, e); err != nil {
				return nil, fmt.Errorf("malformed ERROR: %w", err)
			}
			return nil, e
		}
	}
}
