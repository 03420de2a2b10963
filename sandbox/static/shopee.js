/* The sandbox Shopee front end: like the real one, the page is a shell and its script asks the API,
   signing each request with a header computed in the page (x-sap-sec) from a cookie the shell set. */
(function () {
  "use strict";
  var ROOT = "/shopee";
  function fnv(s) {
    var b = new TextEncoder().encode(s), h = 0x811c9dc5;
    for (var i = 0; i < b.length; i++) { h ^= b[i]; h = Math.imul(h, 0x01000193) >>> 0; }
    return ("00000000" + h.toString(16)).slice(-8);
  }
  function cookie(n) {
    var m = document.cookie.match("(?:^|; )" + n + "=([^;]*)");
    return m ? decodeURIComponent(m[1]) : "";
  }
  function api(path) {
    var t = cookie("SPC_SEC_SI");
    return fetch(path, {headers: {"x-sap-sec": fnv(t + "|" + path), "x-api-source": "pc"}, credentials: "same-origin"})
      .then(function (r) { return r.json(); });
  }
  function esc(s) { var d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }
  function baht(v) { return "฿" + (v / 100000).toLocaleString("en-US", {maximumFractionDigits: 2}); }
  function slug(t) { return t.replace(/[\s\/\\?#%&+\[\]【】()"'<>|,:;!*]+/g, "-").replace(/-{2,}/g, "-").replace(/^-|-$/g, "").slice(0, 120) || "item"; }
  function done() { document.body.setAttribute("data-loaded", "1"); }
  var main = document.getElementById("main");
  var p = location.pathname, q = new URLSearchParams(location.search);
  var cat = p.match(/-cat\.(\d+)/), prod = p.match(/-i\.(\d+)\.(\d+)$/) || p.match(/\/product\/(\d+)\/(\d+)$/);
  function blocked() { main.innerHTML = '<div class="shopee-blocked">ขออภัย ระบบตรวจพบการใช้งานผิดปกติ</div>'; document.body.setAttribute("data-blocked", "1"); done(); }
  if (p.indexOf(ROOT + "/search") === 0 || cat) {
    var page = parseInt(q.get("page") || "0", 10) || 0, path;
    if (cat) {
      path = ROOT + "/api/v4/search/search_items?by=relevancy&limit=60&match_id=" + cat[1] + "&newest=" + (page * 60) +
        "&order=desc&page_type=search&scenario=PAGE_CATEGORY&version=2";
    } else {
      path = ROOT + "/api/v4/search/search_items?by=relevancy&keyword=" + encodeURIComponent(q.get("keyword") || "") +
        "&limit=60&newest=" + (page * 60) + "&order=desc&page_type=search&scenario=PAGE_GLOBAL_SEARCH&version=2";
    }
    api(path).then(function (d) {
      if (d.error === 90309999) { return blocked(); }
      var items = d.items ? d.items.map(function (x) { return x.item_basic; }) :
        ((d.centralize_item_card && d.centralize_item_card.item_cards) || []).map(function (c) {
          return {itemid: c.itemid, shopid: c.shopid, name: c.item_card_displayed_asset.name, price: c.item_card_display_price.price};
        });
      var html = items.map(function (it) {
        var href = ROOT + "/" + encodeURIComponent(slug(it.name)) + "-i." + it.shopid + "." + it.itemid;
        return '<div class="shopee-search-item-result__item" data-sqe="item"><a data-sqe="link" href="' + esc(href) + '">' +
          '<div data-sqe="name">' + esc(it.name) + '</div><span class="price">' + esc(baht(it.price)) + "</span></a></div>";
      }).join("");
      if (!d.nomore) { html += '<a class="shopee-icon-button--right" data-next="1" href="?' + (cat ? "" : "keyword=" + encodeURIComponent(q.get("keyword") || "") + "&") + "page=" + (page + 1) + '">ถัดไป</a>'; }
      main.innerHTML = '<div class="shopee-search-item-result">' + html + "</div>";
      done();
    }).catch(function () { blocked(); });
  } else if (prod) {
    api(ROOT + "/api/v4/pdp/get_pc?item_id=" + prod[2] + "&shop_id=" + prod[1] + "&tz_offset_minutes=420&detail_level=0")
      .then(function (d) {
        if (d.error === 90309999) { return blocked(); }
        if (!d.data) { main.innerHTML = '<div class="product-not-exist">ไม่พบสินค้า</div>'; document.body.setAttribute("data-gone", "1"); return done(); }
        var it = d.data.item;
        main.innerHTML = '<div class="product-briefing"><h1>' + esc(it.title) + '</h1><div class="price">' + esc(baht(it.price)) +
          '</div><div class="shop">' + esc(d.data.shop_detailed.name) + '</div><div class="product-detail">' +
          esc(it.description).replace(/\n/g, "<br>") + "</div></div>";
        done();
      }).catch(function () { blocked(); });
  } else {
    main.innerHTML = '<h1>Shopee (sandbox)</h1>'; done();
  }
})();
