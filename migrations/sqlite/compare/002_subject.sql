-- What a comparison's request is about (the canary key: an account id, an order id…) as text,
-- for any migration definition; account_id was the sample bank's and is no longer written.
ALTER TABLE comparisons ADD COLUMN subject TEXT NULL;
