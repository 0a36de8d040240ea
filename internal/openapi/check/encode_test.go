package check

import (
	"github.com/goccy/go-json"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

type validatorError = verrors.ValidationError

func gojson(v any) ([]byte, error) { return json.Marshal(v) }
