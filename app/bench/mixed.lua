-- wrk script for mixed.sh: every request picks at random one of
--   30% a catalog page              /book/catalog?page=1..500
--   25% a search                    /book/catalog?q=<title prefix>&page=1..3
--   15% a page of the JSON API      /api/books?page=1..500
--   15% a book of the JSON API      /api/books/<id>
--   15% a logged-in visitor's page  /purchases, /book/my_books, /api/purchases
-- Environment: MIXED_COOKIE (the visitor's session cookie, "name=value"),
-- MIXED_MIN_ID and MIXED_MAX_ID (the books' ids, all of them present);
-- MIXED_ONLY=catalog|search|api-books|api-book|visitor: that kind alone.

local cookie = os.getenv("MIXED_COOKIE") or ""
local min_id = tonumber(os.getenv("MIXED_MIN_ID") or "1")
local max_id = tonumber(os.getenv("MIXED_MAX_ID") or "1")
local words = { "Winter", "Garden", "River", "Silent", "Red", "Last", "City", "Night", "Stone", "Glass" }
local hex = "0123456789abcdef"
local visitor = { "/purchases", "/book/my_books", "/api/purchases" }
local anonymous = {}
local logged_in = { Cookie = cookie }

local only = ({ catalog = 1, search = 31, ["api-books"] = 56, ["api-book"] = 71, visitor = 86 })[os.getenv("MIXED_ONLY") or ""]
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
end

function init(args)
    math.randomseed(os.time() * 1000 + id)
end

function request()
    local r = only or math.random(100)
    local path, headers
    if r <= 30 then
        path = "/book/catalog?page=" .. math.random(500)
    elseif r <= 55 then
        local q = words[math.random(#words)]
        if math.random(2) == 1 then
            local h = math.random(16)
            q = q .. "+" .. hex:sub(h, h)
        end
        path = "/book/catalog?q=" .. q .. "&page=" .. math.random(3)
    elseif r <= 70 then
        path = "/api/books?page=" .. math.random(500)
    elseif r <= 85 then
        path = "/api/books/" .. math.random(min_id, max_id)
    else
        path = visitor[math.random(#visitor)]
        headers = logged_in
    end
    return wrk.format("GET", path, headers or anonymous)
end
