-- Envoy upstream HTTP filter: rewrite the model name that MLServer receives.
--
-- In Seldon Core v2 the agent beside each model server rewrites the model
-- name, so a request sent to an experiment reaches the model that the
-- experiment chose. Here the route that picked a cluster sets the request
-- header seldon-internal-model to that cluster's model, and this filter,
-- attached to every cluster, writes it into the request:
--   REST: /v2/models/<any name>/... becomes /v2/models/<model>/...
--   gRPC: ModelInfer, ModelReady and ModelMetadata requests get <model> in
--         model_name (protobuf field 1 of each of those messages).
-- Other requests (server health, server metadata) pass unchanged.

local MODEL_HEADER = "seldon-internal-model"
local REST_MODEL_PREFIX = "/v2/models/"
local GRPC_SERVICE_PREFIX = "/inference.GRPCInferenceService/"
local GRPC_METHODS_WITH_MODEL_NAME = {
  ModelInfer = true,
  ModelReady = true,
  ModelMetadata = true,
}

-- Protobuf wire types (https://protobuf.dev/programming-guides/encoding/).
local WIRE_VARINT = 0
local WIRE_FIXED64 = 1
local WIRE_LENGTH_DELIMITED = 2
local WIRE_FIXED32 = 5

local MODEL_NAME_FIELD = 1
local GRPC_FRAME_HEADER_BYTES = 5

local function encode_varint(value)
  local bytes = {}
  repeat
    local low_bits = value % 128
    value = math.floor(value / 128)
    if value > 0 then
      low_bits = low_bits + 128
    end
    bytes[#bytes + 1] = string.char(low_bits)
  until value == 0
  return table.concat(bytes)
end

-- Decode the varint that starts at byte position pos (1-based).
-- Returns the value and the position after it, or nil when the data ends
-- inside the varint or the varint is longer than the 10 bytes protobuf allows.
-- Values above 2^53 lose precision, which only matters for skipped fields.
local function decode_varint(data, pos)
  local value = 0
  local multiplier = 1
  for _ = 1, 10 do
    if pos > #data then
      return nil
    end
    local byte = data:byte(pos)
    pos = pos + 1
    value = value + (byte % 128) * multiplier
    if byte < 128 then
      return value, pos
    end
    multiplier = multiplier * 128
  end
  return nil
end

-- Return message (one protobuf message, no gRPC framing) with field 1 set to
-- model_name. Every other field is copied unchanged. The new field 1 is
-- written first, and protobuf parsers accept fields in any order.
-- Returns nil and a reason when the message is not valid protobuf.
local function replace_model_name(message, model_name)
  local parts = { string.char(MODEL_NAME_FIELD * 8 + WIRE_LENGTH_DELIMITED),
                  encode_varint(#model_name), model_name }
  local pos = 1
  local size = #message
  while pos <= size do
    local field_start = pos
    local key
    key, pos = decode_varint(message, pos)
    if key == nil then
      return nil, "truncated field key at byte " .. field_start
    end
    local field_number = math.floor(key / 8)
    local wire_type = key % 8
    if wire_type == WIRE_VARINT then
      local _
      _, pos = decode_varint(message, pos)
      if pos == nil then
        return nil, "truncated varint in field " .. field_number
      end
    elseif wire_type == WIRE_FIXED64 then
      pos = pos + 8
    elseif wire_type == WIRE_LENGTH_DELIMITED then
      local length
      length, pos = decode_varint(message, pos)
      if length == nil then
        return nil, "truncated length of field " .. field_number
      end
      pos = pos + length
    elseif wire_type == WIRE_FIXED32 then
      pos = pos + 4
    else
      return nil, "unsupported wire type " .. wire_type .. " in field " .. field_number
    end
    if pos > size + 1 then
      return nil, "field " .. field_number .. " runs past the end of the message"
    end
    if field_number ~= MODEL_NAME_FIELD then
      parts[#parts + 1] = message:sub(field_start, pos - 1)
    end
  end
  return table.concat(parts)
end

local function encode_frame_length(length)
  return string.char(
    math.floor(length / 16777216) % 256,
    math.floor(length / 65536) % 256,
    math.floor(length / 256) % 256,
    length % 256)
end

-- Rewrite every length-prefixed message in a gRPC request body.
-- Each frame is a compression flag byte, a 4-byte big-endian length and the
-- message. Returns the new body, or nil and a reason.
local function rewrite_grpc_body(body, model_name)
  local frames = {}
  local pos = 1
  local size = #body
  while pos <= size do
    if pos + GRPC_FRAME_HEADER_BYTES - 1 > size then
      return nil, "truncated gRPC frame header at byte " .. pos
    end
    local compressed, b1, b2, b3, b4 = body:byte(pos, pos + 4)
    local length = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
    local message_start = pos + GRPC_FRAME_HEADER_BYTES
    local message_end = message_start + length - 1
    if message_end > size then
      return nil, "gRPC frame at byte " .. pos .. " declares " .. length ..
        " bytes but the body has " .. (size - message_start + 1)
    end
    if compressed ~= 0 then
      return nil, "compressed gRPC messages are not supported"
    end
    local message, reason = replace_model_name(body:sub(message_start, message_end), model_name)
    if message == nil then
      return nil, reason
    end
    frames[#frames + 1] = string.char(0) .. encode_frame_length(#message) .. message
    pos = message_end + 1
  end
  return table.concat(frames)
end

function envoy_on_request(request_handle)
  local headers = request_handle:headers()
  local model_name = headers:get(MODEL_HEADER)
  if model_name == nil or model_name == "" then
    return
  end
  headers:remove(MODEL_HEADER)
  local path = headers:get(":path")

  if path:sub(1, #REST_MODEL_PREFIX) == REST_MODEL_PREFIX then
    local after_prefix = path:sub(#REST_MODEL_PREFIX + 1)
    local name_end = after_prefix:find("[/?]")
    local rest = ""
    if name_end ~= nil then
      rest = after_prefix:sub(name_end)
    end
    headers:replace(":path", REST_MODEL_PREFIX .. model_name .. rest)
    return
  end

  if path:sub(1, #GRPC_SERVICE_PREFIX) ~= GRPC_SERVICE_PREFIX then
    return
  end
  local method = path:sub(#GRPC_SERVICE_PREFIX + 1)
  if not GRPC_METHODS_WITH_MODEL_NAME[method] then
    return
  end
  -- NOTE: ModelStreamInfer is not rewritten, because buffering a stream's
  -- whole body would hold its messages until the client closes the stream.
  local body = request_handle:body()
  if body == nil then
    return
  end
  local rewritten, reason = rewrite_grpc_body(body:getBytes(0, body:length()), model_name)
  if rewritten == nil then
    request_handle:logWarn("model_rewrite: " .. method .. " request passed unchanged: " .. reason)
    return
  end
  body:setBytes(rewritten)
end
