-- The bid modifiers in force per platform × campaign × date, one row per campaign criterion: a DEVICE criterion per
-- device, an AD_SCHEDULE criterion per scheduled weekday and time range (fct_campaign_modifiers_daily folds them
-- into the account's hour blocks). A criterion without a bid modifier runs at 1 (no adjustment); minutes become
-- minutes of the day so schedules that do not start on the hour are seen for what they are.

with source as (

    select * from {{ source('raw', 'ad_modifiers') }}

),

renamed as (

    select
        platform,
        cast(campaign_id as bigint)                         as campaign_id,
        cast(date as date)                                  as date,
        cast(criterion_id as bigint)                        as criterion_id,
        upper(trim(criterion_type))                         as criterion_type,
        lower(trim(criterion_device))                       as device,
        upper(trim(day_of_week))                            as day_of_week,
        case upper(trim(day_of_week))
            when 'MONDAY' then 1 when 'TUESDAY' then 2 when 'WEDNESDAY' then 3 when 'THURSDAY' then 4
            when 'FRIDAY' then 5 when 'SATURDAY' then 6 when 'SUNDAY' then 7
        end                                                 as iso_day_of_week,
        cast(start_hour as integer) * 60 + case upper(trim(start_minute))
            when 'FIFTEEN' then 15 when 'THIRTY' then 30 when 'FORTY_FIVE' then 45 else 0
        end                                                 as start_minute_of_day,
        cast(end_hour as integer) * 60 + case upper(trim(end_minute))
            when 'FIFTEEN' then 15 when 'THIRTY' then 30 when 'FORTY_FIVE' then 45 else 0
        end                                                 as end_minute_of_day,
        -- the platform stores a modifier in single precision: six decimals give back the value that was set
        round(coalesce(cast(bid_modifier as double), 1.0), 6) as bid_modifier
    from source

)

select * from renamed
